// Package ha measures topom's high availability on etcd with real processes:
// the gap from kill -9 of the leader to a standby accepting a mutation, the
// gap from Resign to the new leader accepting one, and ListSlots throughput
// on a standby against the leader. It is in Go, beside the e2e tests, to
// share their launchers (internal/testenv: etcd, topom on etcd, roles) and to
// measure through the same gRPC client stack proxies use. It is a report,
// not a pass/fail test:
//
//	TOPOM_BIN=$PWD/../../target/release/topom go test -run '^$' -bench HA -benchtime 1x -timeout 30m ./bench/ha/
//
// Environment: TTL (etcd lease seconds, default 5), RUNS (default 5),
// CALLERS (default 8), READ_SECONDS (per round, default 5), ROUNDS (read
// rounds per instance, alternating, default 2).
package ha

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	topom "github.com/topom/topom/clients/go"
	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// raw is a client of the topom at addr alone: no failover, so a refusal is
// seen as such.
func raw(b *testing.B, addr string) topompb.TopomClient {
	b.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	return topompb.NewTopomClient(cc)
}

// acceptsAt polls c with CreateGroup(id) every 5 ms from now on and returns
// when the first call succeeded (the group exists then).
func acceptsAt(c topompb.TopomClient, id uint32, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.CreateGroup(ctx, &topompb.CreateGroupRequest{GroupId: id})
		cancel()
		if err == nil {
			return time.Now(), nil
		}
		last = err
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("no instance accepted CreateGroup %d within %s: %v", id, timeout, last)
}

// gapUntil is acceptsAt's time less t0; it fails the benchmark on a timeout.
func gapUntil(b *testing.B, t0 time.Time, at time.Time, err error) time.Duration {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	return at.Sub(t0)
}

// quantile of sorted xs (q in 0..1, nearest rank).
func quantile(xs []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(xs))+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

func sortDurations(xs []time.Duration) []time.Duration {
	sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
	return xs
}

// reads runs callers goroutines, each with its own connection, calling
// ListSlots on addr for d; it returns requests per second and the p99.
func reads(b *testing.B, addr string, callers int, d time.Duration) (float64, time.Duration) {
	b.Helper()
	lat := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := range callers {
		c := raw(b, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				t0 := time.Now()
				if _, err := c.ListSlots(context.Background(), &topompb.ListSlotsRequest{}); err != nil {
					b.Errorf("ListSlots on %s: %v", addr, err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		b.Fatalf("no ListSlots answered on %s", addr)
	}
	return float64(len(all)) / time.Since(start).Seconds(), quantile(sortDurations(all), 0.99)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// setup gives the product two groups (one redis-server each) and every slot,
// so that ListSlots answers a realistic table.
func setup(b *testing.B, addr string) {
	b.Helper()
	c, err := topom.Dial(addr, topom.WithCallTimeout(20*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for g := uint32(1); g <= 2; g++ {
		r := testenv.StartRedis(b)
		if err := c.CreateGroup(ctx, g); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Topom.AddGroupServer(ctx, &topompb.AddGroupServerRequest{GroupId: g, Addr: r.Addr, NoSync: true}); err != nil {
			b.Fatal(err)
		}
		ids := make([]int, 0, topom.SlotCount/2)
		for s := int(g-1) * topom.SlotCount / 2; s < int(g)*topom.SlotCount/2; s++ {
			ids = append(ids, s)
		}
		if err := c.AssignSlots(ctx, g, ids...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHA prints one table; b.N is ignored (run with -benchtime 1x).
func BenchmarkHA(b *testing.B) {
	ttl := time.Duration(envInt("TTL", 5)) * time.Second
	runs, callers := envInt("RUNS", 5), envInt("CALLERS", 8)
	readFor, rounds := time.Duration(envInt("READ_SECONDS", 5))*time.Second, envInt("ROUNDS", 2)
	etcd := testenv.StartEtcd(b)
	config := fmt.Sprintf("etcd_lease_ttl = %q", ttl.String())
	leader, standby := testenv.StartLeaderAndStandby(b, etcd.Endpoint, config)
	setup(b, leader.Addr)
	testenv.WaitFor(b, time.Minute, "the standby to see the table", func() error {
		o, err := testenv.Overview(standby.Addr)
		if err != nil {
			return err
		}
		if o.GetGroupCount() != 2 {
			return fmt.Errorf("%d groups", o.GetGroupCount())
		}
		return nil
	})

	// Reads: alternate the instances so that load changes hit both alike.
	var rps = map[bool][]float64{}
	var p99 = map[bool][]time.Duration{}
	for round := 0; round < rounds; round++ {
		for _, onStandby := range []bool{false, true} {
			addr := leader.Addr
			if onStandby {
				addr = standby.Addr
			}
			r, p := reads(b, addr, callers, readFor)
			rps[onStandby] = append(rps[onStandby], r)
			p99[onStandby] = append(p99[onStandby], p)
			b.Logf("round %d ListSlots x%d on %s (standby %v): %.0f req/s, p99 %s", round+1, callers, addr, onStandby, r, ms(p))
		}
	}

	// Resign: the mutation loop on the standby runs from just before the call.
	// The resigned instance stays out for `wait`; the next hand-over goes back
	// to it, so each round waits that long first.
	const holdOff = 2 * time.Second
	id := uint32(1000)
	var resignGaps, resignReported []time.Duration
	for run := 0; run < runs; run++ {
		if run > 0 {
			time.Sleep(holdOff + 500*time.Millisecond)
		}
		id++
		type accepted struct {
			at  time.Time
			err error
		}
		done := make(chan accepted, 1)
		next := raw(b, standby.Addr)
		t0 := time.Now()
		go func(id uint32) {
			at, err := acceptsAt(next, id, time.Minute)
			done <- accepted{at, err}
		}(id)
		r, err := raw(b, leader.Addr).Resign(context.Background(), &topompb.ResignRequest{Wait: durationpb.New(holdOff)})
		if err != nil {
			b.Fatalf("Resign of %s: %v", leader.Addr, err)
		}
		a := <-done
		gap := gapUntil(b, t0, a.at, a.err)
		resignGaps = append(resignGaps, gap)
		resignReported = append(resignReported, r.GetTakeover().AsDuration())
		b.Logf("resign %d: %s → %s, accepted a mutation after %s (takeover reported %s)", run+1, leader.Addr, r.GetLeaderAddr(), ms(gap), r.GetTakeover().AsDuration())
		leader, standby = standby, leader
	}

	// kill -9: a fresh standby replaces the killed leader after each run.
	var killGaps []time.Duration
	for run := 0; run < runs; run++ {
		id++
		next := raw(b, standby.Addr)
		t0 := time.Now()
		leader.Kill()
		at, err := acceptsAt(next, id, 4*ttl+time.Minute)
		gap := gapUntil(b, t0, at, err)
		killGaps = append(killGaps, gap)
		b.Logf("kill -9 %d: %s killed, %s accepted a mutation after %s", run+1, leader.Addr, standby.Addr, ms(gap))
		leader = standby
		standby = testenv.StartTopom(b, testenv.TopomOptions{Etcd: etcd.Endpoint, Config: config})
		testenv.WaitRole(b, standby.Addr, topompb.InstanceRole_INSTANCE_ROLE_STANDBY, testenv.TopomStartTimeout)
	}

	median := func(xs []float64) float64 {
		sort.Float64s(xs)
		return xs[len(xs)/2]
	}
	medianD := func(xs []time.Duration) time.Duration { return sortDurations(xs)[len(xs)/2] }
	kill, resign := sortDurations(killGaps), sortDurations(resignGaps)
	var sb strings.Builder
	fmt.Fprintf(&sb, "\ntopom HA on etcd, lease TTL %s, %d runs each (loadavg at end: %s)\n", ttl, runs, loadavg())
	fmt.Fprintf(&sb, "%-44s %10s %10s %s\n", "gap until a mutation is accepted", "p50", "max", "target")
	fmt.Fprintf(&sb, "%-44s %10s %10s ≤ %s\n", "kill -9 leader → standby", ms(quantile(kill, 0.5)), ms(kill[len(kill)-1]), ms(ttl+time.Second))
	fmt.Fprintf(&sb, "%-44s %10s %10s ≤ 500 ms\n", "Resign → new leader", ms(quantile(resign, 0.5)), ms(resign[len(resign)-1]))
	rep := sortDurations(resignReported)
	fmt.Fprintf(&sb, "%-44s %10s %10s\n", "  (takeover as Resign reports it)", ms(quantile(rep, 0.5)), ms(rep[len(rep)-1]))
	fmt.Fprintf(&sb, "ListSlots, %d callers, medians of %d rounds of %s %14s %10s\n", callers, rounds, readFor, "req/s", "p99")
	lr, sr := median(rps[false]), median(rps[true])
	fmt.Fprintf(&sb, "%-44s %10.0f %10s\n", "leader", lr, ms(medianD(p99[false])))
	fmt.Fprintf(&sb, "%-44s %10.0f %10s   standby/leader %.2f (target ≥ 0.80)\n", "standby", sr, ms(medianD(p99[true])), sr/lr)
	b.Log(sb.String())
	fmt.Print(sb.String())
}
