package topom

import (
	"sync"
	"sync/atomic"
	"time"
)

// leaseBase anchors lease deadlines kept as atomic offsets; time.Since uses
// the monotonic clock, so a wall-clock jump cannot extend a lease.
var leaseBase = time.Now()

// lease is the proxy's side of the lease of proxy.proto: each ProxyHeartbeat's
// send time is remembered by seq; when topom's ServerHeartbeat echoes seq the
// lease is renewed to (that send time) + ttl. Since topom counts from when it
// received the heartbeat, the proxy's lease always ends first. Times come from
// the caller (time.Now carries the monotonic clock; tests pass their own).
type lease struct {
	mu       sync.Mutex
	ttl      time.Duration
	sent     map[uint64]time.Time // seq → send time, for heartbeats not yet echoed
	deadline time.Time            // zero: never held
	renewed  chan struct{}        // signalled (non-blocking) on every renewal
	// until mirrors deadline (ns after leaseBase, 0 = never held) so the
	// data path can check the lease per request without the mutex.
	until atomic.Int64
}

func newLease() *lease {
	return &lease{sent: map[uint64]time.Time{}, renewed: make(chan struct{}, 1)}
}

// setTTL sets the ttl topom announced in RegisterProxy.
func (l *lease) setTTL(ttl time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ttl = ttl
}

// heartbeatSent records that heartbeat seq was sent at t.
func (l *lease) heartbeatSent(seq uint64, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent[seq] = t
}

// echoed handles ServerHeartbeat.ack_seq = seq: the lease runs until the send
// time of heartbeat seq + ttl (never shortened). Unknown seqs (0, or from an
// earlier stream) renew nothing. Older pending seqs are dropped: their echo
// could only renew to an earlier time.
func (l *lease) echoed(seq uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.sent[seq]
	if !ok {
		return false
	}
	for s := range l.sent {
		if s <= seq {
			delete(l.sent, s)
		}
	}
	l.renewTo(at.Add(l.ttl))
	return true
}

// renewFrom renews to at + ttl (used for the hello, which topom counts as a
// heartbeat and answers with the stream's first update).
func (l *lease) renewFrom(at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.renewTo(at.Add(l.ttl))
}

func (l *lease) renewTo(d time.Time) {
	if d.After(l.deadline) {
		l.deadline = d
		l.until.Store(int64(d.Sub(leaseBase)))
	}
	select {
	case l.renewed <- struct{}{}:
	default:
	}
}

// newStream forgets heartbeats of a previous stream (their seqs restart).
func (l *lease) newStream() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.sent)
}

// live reports whether the lease holds at now, and until when.
func (l *lease) live(now time.Time) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.deadline.IsZero() && now.Before(l.deadline), l.deadline
}

// holds reports, without locking, whether the lease holds now.
func (l *lease) holds() bool {
	u := l.until.Load()
	return u != 0 && int64(time.Since(leaseBase)) < u
}

// LeaseLive reports whether the lease holds at this instant. The watcher
// fences from a timer, which can run late (a stopped or starved process);
// a proxy checks this per request so that it never serves on a lapsed lease
// even before the fence has run.
func (w *SlotWatcher) LeaseLive() bool { return w.lease.holds() }
