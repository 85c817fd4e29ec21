package topom_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	topom "github.com/topom/topom/clients/go"
	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

// A short lease keeps the fencing test quick: heartbeats every 2s/3.
const testConfig = `proxy_lease_ttl = "2s"` + "\n"

const waitLong = 30 * time.Second // any condition on a loaded 2-core machine

// cluster is one topom with one group served by a real redis-server.
type cluster struct {
	topom *testenv.Topom
	redis *testenv.Redis
	c     *topom.Client
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	tp := testenv.StartTopom(t, testenv.TopomOptions{Config: testConfig})
	r := testenv.StartRedis(t)
	c, err := topom.Dial(tp.Addr, topom.WithCallTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := c.CreateGroup(ctx, 1); err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if err := c.AddGroupServer(ctx, 1, r.Addr, ""); err != nil {
		t.Fatalf("AddGroupServer: %v", err)
	}
	if err := c.AssignSlots(ctx, 1, 0, 1, 2); err != nil {
		t.Fatalf("AssignSlots: %v", err)
	}
	return &cluster{topom: tp, redis: r, c: c}
}

// recorder is an Applier that records what it was given and refuses
// updates while refuse returns a reason.
type recorder struct {
	mu      sync.Mutex
	applied []uint64
	fences  int
	refuse  atomic.Pointer[func(next *topom.Table) string]
}

func (r *recorder) Apply(prev, next *topom.Table) error {
	if f := r.refuse.Load(); f != nil {
		if why := (*f)(next); why != "" {
			return errors.New(why)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = append(r.applied, next.Revision)
	return nil
}

func (r *recorder) Fence() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fences++
}

func (r *recorder) fenceCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fences
}

func startWatcher(t *testing.T, c *topom.Client, token string, a topom.Applier) *topom.SlotWatcher {
	t.Helper()
	w := topom.NewSlotWatcher(c, topom.WatcherConfig{
		Proxy:         &topompb.Proxy{Token: token, AdminAddr: "127.0.0.1:1", ProxyAddr: "127.0.0.1:2"},
		Applier:       a,
		Stats:         func() *topompb.ProxyStats { return &topompb.ProxyStats{OpsTotal: 42} },
		StatsInterval: 200 * time.Millisecond,
		MaxBackoff:    500 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("SlotWatcher.Run did not return within 10s of cancel")
		}
	})
	return w
}

// proxyStatus returns topom's view of the proxy token.
func proxyStatus(c *topom.Client, token string) (*topompb.ProxyStatus, error) {
	ps, err := c.ListProxies(context.Background())
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if p.GetToken() == token {
			return p.GetStatus(), nil
		}
	}
	return nil, fmt.Errorf("proxy %s not listed", token)
}

// waitSynced waits until the watcher serves topom's current revision and
// topom has recorded the ACK; it returns that revision.
func waitSynced(t *testing.T, c *topom.Client, w *topom.SlotWatcher, token string) uint64 {
	t.Helper()
	var rev uint64
	testenv.WaitFor(t, waitLong, "the watcher to serve and ACK topom's revision", func() error {
		ls, err := c.ListSlots(context.Background())
		if err != nil {
			return err
		}
		rev = ls.GetRevision()
		tb, err := w.Table()
		if err != nil {
			return err
		}
		if tb.Revision != rev || tb.Epoch != ls.GetEpoch() {
			return fmt.Errorf("watcher at %s/%d, topom at %s/%d", tb.Epoch, tb.Revision, ls.GetEpoch(), rev)
		}
		st, err := proxyStatus(c, token)
		if err != nil {
			return err
		}
		if st.GetAppliedRevision() != rev {
			return fmt.Errorf("topom records applied revision %d, want %d", st.GetAppliedRevision(), rev)
		}
		return nil
	})
	return rev
}

func TestWatcherAppliesAcksAndNacks(t *testing.T) {
	cl := newCluster(t)
	rec := &recorder{}
	w := startWatcher(t, cl.c, "p-ack", rec)
	rev := waitSynced(t, cl.c, w, "p-ack")
	tb, _ := w.Table()
	if tb.SlotAt(1).Backend != cl.redis.Addr || tb.SlotAt(5).Backend != "" {
		t.Fatalf("snapshot: slot 1 -> %q, slot 5 -> %q; want %q and offline", tb.SlotAt(1).Backend, tb.SlotAt(5).Backend, cl.redis.Addr)
	}
	if st := w.State(); st != topom.StateServing {
		t.Fatalf("state %v, want serving", st)
	}

	// Every update is applied and ACKed.
	for i := 10; i < 13; i++ {
		if err := cl.c.AssignSlots(context.Background(), 1, i); err != nil {
			t.Fatal(err)
		}
		rev2 := waitSynced(t, cl.c, w, "p-ack")
		if rev2 <= rev {
			t.Fatalf("revision did not grow: %d -> %d", rev, rev2)
		}
		rev = rev2
		if tb, _ := w.Table(); tb.SlotAt(i).Backend != cl.redis.Addr {
			t.Fatalf("slot %d not applied: %+v", i, tb.SlotAt(i))
		}
	}

	// An update the Applier refuses is NACKed, shows as the last NACK, and the
	// old table keeps serving.
	refuse := func(next *topom.Table) string {
		if next.SlotAt(1).Backend == "" {
			return "test refuses slot 1 offline"
		}
		return ""
	}
	rec.refuse.Store(&refuse)
	if _, err := cl.c.Topom.AssignSlotsOffline(context.Background(), &topompb.AssignSlotsOfflineRequest{SlotIds: []uint32{1}}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, waitLong, "topom to show the NACK", func() error {
		st, err := proxyStatus(cl.c, "p-ack")
		if err != nil {
			return err
		}
		if !strings.Contains(st.GetLastNack(), "test refuses slot 1 offline") {
			return fmt.Errorf("last_nack %q", st.GetLastNack())
		}
		return nil
	})
	tb, err := w.Table()
	if err != nil || tb.Revision != rev || tb.SlotAt(1).Backend != cl.redis.Addr {
		t.Fatalf("after the NACK the old table must serve: %v, %v", tb, err)
	}
	// Accepting again: the watcher resumes and catches up.
	rec.refuse.Store(nil)
	waitSynced(t, cl.c, w, "p-ack")
	if tb, _ := w.Table(); tb.SlotAt(1).Backend != "" {
		t.Fatalf("slot 1 should be offline now: %+v", tb.SlotAt(1))
	}
	if st, _ := proxyStatus(cl.c, "p-ack"); st.GetLastNack() != "" {
		t.Errorf("last_nack %q after the ACK, want cleared", st.GetLastNack())
	}

	// Stats reported on the stream show in GetStats.
	testenv.WaitFor(t, waitLong, "the proxy's stats in GetStats", func() error {
		s, err := cl.c.Topom.GetStats(context.Background(), &topompb.GetStatsRequest{})
		if err != nil {
			return err
		}
		for _, p := range s.GetStats().GetProxies() {
			if p.GetProxy().GetToken() == "p-ack" && p.GetStats().GetOpsTotal() == 42 {
				return nil
			}
		}
		return errors.New("no stats with ops_total 42 for p-ack")
	})
}

func TestWatcherFollowsRestart(t *testing.T) {
	cl := newCluster(t)
	w := startWatcher(t, cl.c, "p-restart", nil)
	waitSynced(t, cl.c, w, "p-restart")
	epoch, _ := w.AppliedRevision()

	cl.topom = cl.topom.Restart(t) // same address and data dir
	if err := cl.c.AssignSlots(context.Background(), 1, 20); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, cl.c, w, "p-restart")
	newEpoch, _ := w.AppliedRevision()
	if newEpoch == epoch {
		t.Fatalf("epoch %s unchanged after a restart", epoch)
	}
	if tb, _ := w.Table(); tb.SlotAt(20).Backend != cl.redis.Addr {
		t.Fatalf("slot 20 not applied after the restart: %+v", tb.SlotAt(20))
	}
}

func TestWatcherFencesWhenTopomStops(t *testing.T) {
	cl := newCluster(t)
	rec := &recorder{}
	w := startWatcher(t, cl.c, "p-fence", rec)
	waitSynced(t, cl.c, w, "p-fence")

	cl.topom.Pause(t)
	resumed := false
	defer func() {
		if !resumed {
			cl.topom.Resume(t)
		}
	}()
	// The lease is 2s from the last echoed heartbeat; give it the whole window.
	testenv.WaitFor(t, waitLong, "the watcher to fence", func() error {
		if _, err := w.Table(); !errors.Is(err, topom.ErrFenced) {
			return fmt.Errorf("Table() error %v, want ErrFenced", err)
		}
		// Lookups fail first; the Applier hears of it just after.
		if n := rec.fenceCount(); n == 0 {
			return errors.New("Applier.Fence not called yet")
		}
		return nil
	})
	if w.State() != topom.StateFenced || w.Ready() || rec.fenceCount() != 1 {
		t.Fatalf("state %v ready %v fences %d; want fenced, not ready, 1", w.State(), w.Ready(), rec.fenceCount())
	}
	cl.topom.Resume(t)
	resumed = true
	waitSynced(t, cl.c, w, "p-fence")
	if !w.Ready() {
		t.Fatal("not ready after re-sync")
	}
}
