package topom_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	topom "github.com/topom/topom/clients/go"
	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

// mutations runs CreateGroup / RemoveGroup of spare groups (100..107) through
// c until stop is set; every failed call is a failure the client's own retry
// did not absorb.
type mutations struct {
	done   atomic.Int64
	mu     sync.Mutex
	failed []string
}

func (m *mutations) run(c *topom.Client, stop *atomic.Bool) {
	ctx := context.Background()
	for n := 0; !stop.Load(); n++ {
		id := uint32(100 + n%8)
		if err := c.CreateGroup(ctx, id); err != nil {
			m.fail(fmt.Sprintf("CreateGroup %d (on %s): %v", id, c.Current(), err))
			continue
		}
		m.done.Add(1)
		if _, err := c.Topom.RemoveGroup(ctx, &topompb.RemoveGroupRequest{GroupId: id}); err != nil {
			m.fail(fmt.Sprintf("RemoveGroup %d (on %s): %v", id, c.Current(), err))
			continue
		}
		m.done.Add(1)
	}
}

func (m *mutations) fail(what string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failed = append(m.failed, time.Now().Format("15:04:05.000")+" "+what)
}

// waitMore waits until n more mutations than now have succeeded.
func (m *mutations) waitMore(t *testing.T, n int64, what string) {
	t.Helper()
	target := m.done.Load() + n
	testenv.WaitFor(t, 60*time.Second, what, func() error {
		if d := m.done.Load(); d < target {
			return fmt.Errorf("%d of %d mutations", d, target)
		}
		return nil
	})
}

// A Resign while a client with both endpoints mutates in a loop: every
// mutation succeeds (the client follows the hand-over by itself) and the
// calls end up on the new leader.
func TestResignUnderMutationLoad(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	// A long lease: renewals come every TTL/3, and a Resign must not wait for
	// the next one (it did: up to 20 s here).
	a, b := testenv.StartLeaderAndStandby(t, etcd.Endpoint, `etcd_lease_ttl = "60s"`)
	c, err := topom.Dial(a.Addr+","+b.Addr, topom.WithCallTimeout(callTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var m mutations
	var stop atomic.Bool
	done := make(chan struct{})
	go func() { defer close(done); m.run(c, &stop) }()
	defer func() { stop.Store(true); <-done }()
	m.waitMore(t, 20, "mutations on the first leader")

	direct, err := topom.Dial(a.Addr, topom.WithCallTimeout(callTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	before := m.done.Load()
	r, err := direct.Topom.Resign(context.Background(), &topompb.ResignRequest{})
	if err != nil {
		t.Fatalf("Resign: %v", err)
	}
	if r.GetLeaderAddr() != b.Addr {
		t.Errorf("Resign named %q as the new leader, want the standby %s", r.GetLeaderAddr(), b.Addr)
	}
	// Measured 15–110 ms on a loaded 2-core machine; the margin is for load.
	if took := r.GetTakeover().AsDuration(); took > 2*time.Second {
		t.Errorf("Resign took %s to hand over", took)
	}
	m.waitMore(t, 20, "mutations after the hand-over")
	stop.Store(true)
	<-done

	t.Logf("Resign took over in %s; %d mutations in all, %d during and after it",
		r.GetTakeover().AsDuration(), m.done.Load(), m.done.Load()-before)
	for _, f := range m.failed {
		t.Errorf("failed mutation: %s", f)
	}
	if got := c.Current(); got != b.Addr {
		t.Errorf("the client calls %s, want the new leader %s", got, b.Addr)
	}
	if o, err := testenv.Overview(a.Addr); err != nil || o.GetRole() != topompb.InstanceRole_INSTANCE_ROLE_STANDBY {
		t.Errorf("the resigned instance: %v, role %s", err, o.GetRole())
	}
}
