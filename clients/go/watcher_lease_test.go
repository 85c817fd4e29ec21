package topom

import (
	"testing"
	"time"
)

// The lease arithmetic with explicit times standing for the monotonic clock.
func TestLeaseRenewsFromSendTime(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ttl := 3 * time.Second
	l := newLease()
	l.setTTL(ttl)
	if live, _ := l.live(t0); live {
		t.Fatal("a lease never renewed must not be live")
	}
	l.heartbeatSent(1, t0)
	l.heartbeatSent(2, t0.Add(time.Second))
	// The echo of 1 arrives late (at t0+2.5s): the lease still runs from the
	// *send* time of heartbeat 1.
	if !l.echoed(1) {
		t.Fatal("echo of a sent heartbeat must renew")
	}
	if live, d := l.live(t0.Add(2500 * time.Millisecond)); !live || !d.Equal(t0.Add(ttl)) {
		t.Fatalf("after echo 1: live=%v deadline=%v, want deadline %v", live, d, t0.Add(ttl))
	}
	if live, _ := l.live(t0.Add(ttl)); live {
		t.Fatal("the lease must have run out exactly at send time + ttl")
	}
	if !l.echoed(2) {
		t.Fatal("echo 2")
	}
	if _, d := l.live(t0); !d.Equal(t0.Add(time.Second + ttl)) {
		t.Fatalf("after echo 2: deadline %v", d)
	}
	// Unknown or repeated seqs renew nothing; an older echo never shortens.
	if l.echoed(0) || l.echoed(2) || l.echoed(7) {
		t.Fatal("unknown seq renewed the lease")
	}
	l.heartbeatSent(3, t0) // sent "earlier" (clock games): must not shorten
	l.echoed(3)
	if _, d := l.live(t0); !d.Equal(t0.Add(time.Second + ttl)) {
		t.Fatalf("an earlier send time shortened the lease: %v", d)
	}
	// A new stream forgets unanswered heartbeats of the old one.
	l.heartbeatSent(4, t0.Add(10*time.Second))
	l.newStream()
	if l.echoed(4) {
		t.Fatal("an old stream's heartbeat renewed the lease")
	}
	l.renewFrom(t0.Add(20 * time.Second))
	if live, _ := l.live(t0.Add(22 * time.Second)); !live {
		t.Fatal("renewFrom (the hello) must renew")
	}
}

func TestBackoffBoundsAndJitter(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	prevHi := time.Duration(0)
	for i := 0; i < 10; i++ {
		d := b.next()
		hi := min(100*time.Millisecond<<i, time.Second)
		if d < hi/2 || d > hi {
			t.Fatalf("attempt %d: %v not in [%v, %v]", i, d, hi/2, hi)
		}
		prevHi = hi
	}
	if prevHi != time.Second {
		t.Fatal("never reached max")
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Fatalf("after reset: %v", d)
	}
}
