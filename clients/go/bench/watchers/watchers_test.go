// Package watchers benchmarks many SlotWatchers against one real topom:
//
//	TOPOM_BIN=/work/bin/topom go test -run '^$' -bench Watchers -benchtime 1x ./bench/watchers/
//
// It is not run by CI (go test without -bench skips it). WATCHERS and CHANGES
// override the counts (defaults 1000 and 25); CHANGES_CPUPROFILE=FILE
// profiles this process during the changes only.
package watchers

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	topom "github.com/topom/topom/clients/go"
	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

// counter counts watchers whose applied revision crosses base.
type counter struct {
	base atomic.Uint64
	n    atomic.Int64
	all  int64
	// first is when the first watcher applied the change (UnixNano).
	first atomic.Int64
	done  atomic.Pointer[chan struct{}]
}

type applier struct{ c *counter }

func (a applier) Apply(prev, next *topom.Table) error {
	b := a.c.base.Load()
	if prev != nil && prev.Revision <= b && next.Revision > b {
		n := a.c.n.Add(1)
		if n == 1 {
			a.c.first.Store(time.Now().UnixNano())
		}
		if n == a.c.all {
			close(*a.c.done.Load())
		}
	}
	return nil
}

func (applier) Fence() {}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func BenchmarkWatchers(b *testing.B) {
	nw, changes := envInt("WATCHERS", 1000), envInt("CHANGES", 25)
	const perConn = 50 // watchers sharing one gRPC connection, as if on a few hosts
	tp := testenv.StartTopom(b, testenv.TopomOptions{})
	r := testenv.StartRedis(b)
	admin, err := topom.Dial(tp.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	ctx := context.Background()
	if err := admin.CreateGroup(ctx, 1); err != nil {
		b.Fatal(err)
	}
	if err := admin.AddGroupServer(ctx, 1, r.Addr, ""); err != nil {
		b.Fatal(err)
	}

	c := &counter{all: int64(nw)}
	ch := make(chan struct{})
	c.done.Store(&ch)
	// The snapshots (prev == nil) are not counted; only the changes below.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	before := heap()
	var clients []*topom.Client
	watchers := make([]*topom.SlotWatcher, nw)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	for i := range watchers {
		if i%perConn == 0 {
			cl, err := topom.Dial(tp.Addr)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			clients = append(clients, cl)
		}
		w := topom.NewSlotWatcher(clients[len(clients)-1], topom.WatcherConfig{
			Proxy:   &topompb.Proxy{Token: fmt.Sprintf("bench-%04d", i), AdminAddr: "127.0.0.1:1"},
			Applier: applier{c},
			Logger:  quiet,
		})
		watchers[i] = w
		go w.Run(wctx)
	}
	testenv.WaitFor(b, 5*time.Minute, "every watcher to serve", func() error {
		for i, w := range watchers {
			if !w.Ready() {
				return fmt.Errorf("watcher %d is %v", i, w.State())
			}
		}
		return nil
	})
	b.Logf("%d watchers registered and serving in %s", nw, time.Since(start).Round(time.Millisecond))
	perProxy := float64(heap()-before) / float64(nw)

	var lat, firsts []time.Duration
	topomCPU0, goCPU0, wall0 := testenv.CPUOf(tp.Pid()), testenv.CPUOf(os.Getpid()), time.Now()
	stopProfile := profileChanges(b)
	b.ResetTimer()
	for i := 0; i < changes; i++ {
		ls, err := admin.ListSlots(ctx)
		if err != nil {
			b.Fatal(err)
		}
		c.base.Store(ls.GetRevision())
		c.n.Store(0)
		done := make(chan struct{})
		c.done.Store(&done)
		t0 := time.Now()
		resp, err := admin.Topom.AssignSlots(ctx, &topompb.AssignSlotsRequest{Mappings: []*topompb.SlotMapping{{Id: uint32(i), GroupId: 1}}})
		if err != nil {
			b.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatalf("change %d: only %d of %d watchers applied within a minute", i, c.n.Load(), nw)
		}
		lat = append(lat, time.Since(t0))
		firsts = append(firsts, time.Unix(0, c.first.Load()).Sub(t0))
		if i == 0 {
			// Once: topom's own record of the ACKs.
			testenv.WaitFor(b, time.Minute, "ListProxies to show every ACK", func() error {
				ps, err := admin.ListProxies(ctx)
				if err != nil {
					return err
				}
				acked := 0
				for _, p := range ps {
					if p.GetStatus().GetAppliedRevision() >= resp.GetRevision() {
						acked++
					}
				}
				if acked < nw {
					return fmt.Errorf("%d of %d proxies acked revision %d", acked, nw, resp.GetRevision())
				}
				return nil
			})
			b.Logf("change 0: applied by all in %s; every ACK recorded by topom (ListProxies) at %s", lat[0].Round(time.Microsecond), time.Since(t0).Round(time.Microsecond))
		}
	}
	b.StopTimer()
	stopProfile()
	wall := time.Since(wall0)
	b.Logf("during the changes (%s wall): topom used %s CPU, this process %s",
		wall.Round(time.Millisecond), (testenv.CPUOf(tp.Pid()) - topomCPU0).Round(time.Millisecond), (testenv.CPUOf(os.Getpid()) - goCPU0).Round(time.Millisecond))
	slices.Sort(lat)
	slices.Sort(firsts)
	b.Logf("AssignSlots -> first watcher applied: p50 %s, max %s (the spread to the last is topom sending %d per-proxy updates)",
		firsts[len(firsts)/2].Round(time.Microsecond), firsts[len(firsts)-1].Round(time.Microsecond), nw)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.Logf("%d watchers, %d slot changes: AssignSlots -> all applied: p50 %s, p99 %s, max %s; heap per watcher %.0f bytes",
		nw, changes, p(0.50).Round(time.Microsecond), p(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond), perProxy)
	b.ReportMetric(float64(p(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(perProxy, "heap-B/watcher")
}

// profileChanges starts a CPU profile of this process into the file named by
// CHANGES_CPUPROFILE, if set: unlike -cpuprofile it leaves out the
// registration of every watcher and their first snapshots.
func profileChanges(b *testing.B) (stop func()) {
	path := os.Getenv("CHANGES_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}
