package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	topom "github.com/topom/topom/clients/go"
	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

// haLeaseTTL is the etcd lease of these tests: short, so a takeover after a
// kill -9 is quick, yet several keep-alives long on a loaded machine.
const haLeaseTTL = 3 * time.Second

// isFenced is a proxy's refusal while its lease with topom has run out; the
// command was not applied.
func isFenced(e string) bool { return strings.HasPrefix(e, "ERR proxy is fenced") }

// progress counts slots 0..511 on their way to group 2: done (there, no
// action left), left (not done) and inFlight (past pending: the engine has
// them).
func progress(ls *topompb.ListSlotsResponse) (done, left, inFlight int) {
	for _, m := range ls.GetMappings()[:512] {
		switch a := m.GetAction(); {
		case m.GetGroupId() == 2 && a == nil:
			done++
		case a != nil && a.GetState() > topompb.SlotActionState_SLOT_ACTION_STATE_PENDING:
			left++
			inFlight++
		default:
			left++
		}
	}
	return done, left, inFlight
}

// states counts the actions of slots 0..511 by state, for the log.
func states(ls *topompb.ListSlotsResponse) map[string]int {
	n := map[string]int{}
	for _, m := range ls.GetMappings()[:512] {
		if a := m.GetAction(); a != nil {
			n[strings.TrimPrefix(a.GetState().String(), "SLOT_ACTION_STATE_")]++
		}
	}
	return n
}

// listSlotsAt reads the slot table of the topom at addr alone.
func listSlotsAt(t *testing.T, addr string) *topompb.ListSlotsResponse {
	t.Helper()
	c := dialTopom(t, addr)
	ls, err := topompb.NewTopomClient(c.Conn()).ListSlots(context.Background(), &topompb.ListSlotsRequest{})
	if err != nil {
		t.Fatalf("ListSlots on %s: %v", addr, err)
	}
	return ls
}

// Two topom instances on etcd, two proxies following both, a checked load
// through the proxies, and a 512-slot migration: the leader is killed with
// SIGKILL while slots are still migrating. The standby takes over and
// finishes the migration, the proxies stream from it and serve, and every
// key ends on the group owning its slot with its last acknowledged write.
func TestMigrationFinishesAfterTheLeaderIsKilled(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	a, b := testenv.StartLeaderAndStandby(t, etcd.Endpoint, fmt.Sprintf("etcd_lease_ttl = %q\nproxy_lease_ttl = \"10s\"", haLeaseTTL))
	both := a.Addr + "," + b.Addr
	c, err := topom.Dial(both, topom.WithCallTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &cluster{topom: a, c: c}
	cl.addGroups(t, 2)
	assignAll(t, c, 1)
	ctx := context.Background()

	p1, p2 := testenv.StartProxy(t, both), testenv.StartProxy(t, both)
	p1.WaitReady(t, waitLong)
	p2.WaitReady(t, waitLong)
	load(t, p1.Addr, migrationKeys)

	var stop atomic.Bool
	workers := make([]*worker, 6)
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i := range workers {
		workers[i] = &worker{id: i, of: len(workers), proxies: []string{p1.Addr, p2.Addr}, alsoRetry: isFenced}
		wg.Add(1)
		go func(i int) { defer wg.Done(); errs[i] = workers[i].run(&stop) }(i)
	}
	stopLoad := func() { stop.Store(true); wg.Wait() }
	defer stopLoad()

	started := time.Now()
	if _, err := c.Topom.CreateSlotActionRange(ctx, &topompb.CreateSlotActionRangeRequest{Begin: 0, End: 511, TargetGroupId: 2}); err != nil {
		t.Fatal(err)
	}
	var seen [3]int // done, left and in flight, as the leader last reported them
	var seenStates map[string]int
	testenv.WaitFor(t, 300*time.Second, "the migration to be under way", func() error {
		ls, err := c.ListSlots(ctx)
		if err != nil {
			return err
		}
		done, left, inFlight := progress(ls)
		seen, seenStates = [3]int{done, left, inFlight}, states(ls)
		if left < 128 {
			t.Fatalf("the migration ran too fast to kill the leader in the middle: %d slots left", left)
		}
		// One scan serves every queued slot, so slots finish together at the
		// end of the pass: kill while the data pass is running.
		if seenStates["MIGRATING"] < 64 {
			return fmt.Errorf("%d done, %d in flight %v", done, inFlight, seenStates)
		}
		return nil
	})
	a.Kill()
	killed := time.Now()
	_, left, inFlight := progress(listSlotsAt(t, b.Addr))
	t.Logf("killed the leader %s after %s: it last reported %d slots done, %d left, %d in flight %v; the standby sees %d left, %d in flight",
		a.Addr, killed.Sub(started).Round(time.Millisecond), seen[0], seen[1], seen[2], seenStates, left, inFlight)
	if left == 0 {
		t.Fatal("the standby sees the migration finished before the leader was killed")
	}

	testenv.WaitRole(t, b.Addr, topompb.InstanceRole_INSTANCE_ROLE_LEADER, 4*haLeaseTTL+waitLong)
	t.Logf("the standby leads %s after the kill; its slot actions: %v", time.Since(killed).Round(time.Millisecond), states(listSlotsAt(t, b.Addr)))
	testenv.WaitFor(t, 300*time.Second, "the new leader to finish the migration", func() error {
		ls, err := c.ListSlots(ctx)
		if err != nil {
			return err
		}
		if _, left, _ := progress(ls); left > 0 {
			return fmt.Errorf("%d slots still moving", left)
		}
		return nil
	})
	t.Logf("512 slots moved %s after the start, %s after the kill",
		time.Since(started).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))

	// The proxies follow the new leader: both stream from it and have
	// applied its final table.
	final := listSlotsAt(t, b.Addr).GetRevision()
	onB := dialTopom(t, b.Addr)
	testenv.WaitFor(t, waitLong, "both proxies to apply the new leader's table", func() error {
		ps, err := onB.ListProxies(ctx)
		if err != nil {
			return err
		}
		on := 0
		for _, p := range ps {
			if p.GetStatus().GetConnected() && p.GetStatus().GetAppliedRevision() >= final {
				on++
			}
		}
		if on != 2 {
			return fmt.Errorf("%d of %d proxies streaming at revision %d", on, len(ps), final)
		}
		return nil
	})
	// Keep the load on a little: the proxies serve on the new leader's table.
	time.Sleep(500 * time.Millisecond)
	stopLoad()
	sum := collect(t, workers, errs)
	t.Logf("%d requests through 2 proxies; %d answered \"being moved, retry\" and %d \"fenced\" (both retried); %d keys rewritten",
		sum.ops, sum.moving, sum.refused, len(sum.last))
	if sum.ops < 1000 {
		t.Errorf("the load made too little progress: %d requests", sum.ops)
	}
	p1.WaitReady(t, waitLong)
	p2.WaitReady(t, waitLong)
	checkMoved(t, cl.groups[0], cl.groups[1], migrationKeys, sum.last)
}
