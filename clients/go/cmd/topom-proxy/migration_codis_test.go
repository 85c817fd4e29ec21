package main

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

// codisMigrationKeys is smaller than migrationKeys: codis-server moves keys
// one SLOTSMGRTTAGSLOT-ASYNC batch at a time, slower than MIGRATE on this
// machine, and the path under test is the proxy's, not the bulk copy.
const codisMigrationKeys = 20_000

// The codis-server path: two groups of real codis-server, topom migrating
// 512 slots semi-async (its default), a checked load through two proxies.
// Requests on a moving slot go through SLOTSMGRT-EXEC-WRAPPER on the source
// (0: to the target, 1: retry, 2: the source ran it). Afterwards every key
// is on the group owning its slot with its last acknowledged value, and
// the only errors were the bounded "being moved" kind.
func TestMigrationUnderLoadOnCodisServers(t *testing.T) {
	cl := newClusterOf(t, 2, "", testenv.StartCodisServer)
	ctx := context.Background()
	assignAll(t, cl.c, 1)
	p1, p2 := cl.proxy(t), cl.proxy(t)
	load(t, p1.Addr, codisMigrationKeys)

	var stop atomic.Bool
	workers := make([]*worker, 4)
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	for i := range workers {
		workers[i] = &worker{id: i, of: len(workers), keys: codisMigrationKeys, proxies: []string{p1.Addr, p2.Addr}}
		wg.Add(1)
		go func(i int) { defer wg.Done(); errs[i] = workers[i].run(&stop) }(i)
	}
	start := time.Now()
	if _, err := cl.c.Topom.CreateSlotActionRange(ctx, &topompb.CreateSlotActionRangeRequest{Begin: 0, End: 511, TargetGroupId: 2}); err != nil {
		stop.Store(true)
		wg.Wait()
		t.Fatal(err)
	}
	sawSemiAsync := false
	waitFirstHalfOnGroup2(t, cl.c, func(ls *topompb.ListSlotsResponse) {
		for _, s := range ls.GetSlots()[:512] {
			if s.GetForwardMethod() == topompb.ForwardMethod_FORWARD_METHOD_SEMI_ASYNC && s.GetMigrateFrom() != "" {
				sawSemiAsync = true
			}
		}
	})
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond) // the load runs on the final table too
	stop.Store(true)
	wg.Wait()
	sum := collect(t, workers, errs)
	served := metric(t, p1, "topom_proxy_migration_requests_total") + metric(t, p2, "topom_proxy_migration_requests_total")
	t.Logf("512 slots moved between codis-servers in %s: %d checked requests through 2 proxies, %.0f through the migration path, %d answered \"being moved, retry\"",
		took.Round(time.Millisecond), sum.ops, served, sum.moving)
	if !sawSemiAsync {
		t.Log("no ListSlots poll caught a slot migrating semi-async (the proxies' counters still show the path)")
	}
	if served == 0 {
		t.Error("no request went through the migration path: the load did not exercise SLOTSMGRT-EXEC-WRAPPER")
	}
	if sum.ops < 500 {
		t.Errorf("the load made too little progress: %d requests", sum.ops)
	}
	if sum.moving > sum.ops/20 {
		t.Errorf("%d of %d requests were refused as being moved, want at most 5%%", sum.moving, sum.ops)
	}
	checkMoved(t, cl.groups[0], cl.groups[1], codisMigrationKeys, sum.last)
}
