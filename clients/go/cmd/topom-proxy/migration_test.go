package main

import (
	"context"
	"errors"
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

const migrationKeys = 100_000

func migKey(i int) string { return fmt.Sprintf("key:%d", i) }

// load writes key:0..n-1 = v0-i through the proxy, pipelined.
func load(t *testing.T, addr string, n int) {
	t.Helper()
	c := dial(t, addr)
	for lo := 0; lo < n; lo += 2000 {
		hi := min(lo+2000, n)
		for i := lo; i < hi; i++ {
			_ = c.Send("SET", migKey(i), fmt.Sprintf("v0-%d", i))
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		for i := lo; i < hi; i++ {
			if v, err := c.Receive(); err != nil || v.String() != "OK" {
				t.Fatalf("loading %s: %v %v", migKey(i), v, err)
			}
		}
	}
}

// dump returns every key and string value on a redis-server.
func dump(t *testing.T, r *testenv.Redis) map[string]string {
	t.Helper()
	c := dial(t, r.Addr)
	keys, err := c.Do("KEYS", "*")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(keys.Arr))
	for lo := 0; lo < len(keys.Arr); lo += 1000 {
		args := []string{"MGET"}
		for _, k := range keys.Arr[lo:min(lo+1000, len(keys.Arr))] {
			args = append(args, k.Str)
		}
		vals, err := c.Do(args...)
		if err != nil || len(vals.Arr) != len(args)-1 {
			t.Fatalf("MGET on %s: %v %v", r.Addr, vals.Err(), err)
		}
		for j, v := range vals.Arr {
			out[args[j+1]] = v.Str
		}
	}
	return out
}

// worker writes and reads its own keys (index ≡ id mod workers) through the
// proxies: each SET through one proxy is read back through the other, and
// the last acknowledged value per key is remembered.
type worker struct {
	id, of  int
	keys    int // key:0..keys-1 (0: migrationKeys)
	proxies []string
	// alsoRetry, when set, names more refusals that were not applied and
	// are retried (counted in refused); nil: only "being moved".
	alsoRetry func(string) bool
	stop      *atomic.Bool // set by run
	last      map[string]string
	ops       int
	moving    int      // "being moved, retry" answers (retried)
	refused   int      // answers alsoRetry accepted (retried)
	other     []string // any other error: the test fails
}

func isMoving(e string) bool {
	return strings.HasPrefix(e, "ERR slot ") && strings.HasSuffix(e, " is being moved, retry")
}

// do runs one command, retrying it while it is refused as "being moved" or
// as alsoRetry says (a refused command was not applied).
func (w *worker) do(c *testenv.Conn, args ...string) (testenv.Value, error) {
	for {
		v, err := c.Do(args...)
		if err != nil {
			return v, fmt.Errorf("%s %s: %w", args[0], args[1], err)
		}
		w.ops++
		switch e := v.Err(); {
		case isMoving(e):
			w.moving++
		case w.alsoRetry != nil && w.alsoRetry(e):
			w.refused++
			if w.stop.Load() {
				return v, errStopped // a proxy that never re-syncs must not hang the test
			}
			time.Sleep(10 * time.Millisecond) // the refusal lasts until the proxy re-syncs
		default:
			return v, nil
		}
	}
}

// errStopped ends a worker stopped while its command was being refused (so
// not applied, and not remembered as acknowledged).
var errStopped = errors.New("stopped while refused")

func (w *worker) run(stop *atomic.Bool) error {
	w.stop = stop
	conns := make([]*testenv.Conn, len(w.proxies))
	for i, a := range w.proxies {
		c, err := testenv.Dial(a)
		if err != nil {
			return err
		}
		defer c.Close()
		conns[i] = c
	}
	w.last = map[string]string{}
	keys := w.keys
	if keys == 0 {
		keys = migrationKeys
	}
	for n := 0; !stop.Load(); n++ {
		key := migKey(w.id + w.of*((n*7919)%(keys/w.of)))
		val := fmt.Sprintf("w%d-%d", w.id, n)
		wc, rc := conns[n%2], conns[(n+1)%2]
		v, err := w.do(wc, "SET", key, val)
		if errors.Is(err, errStopped) {
			return nil
		}
		if err != nil {
			return err
		}
		if v.String() != "OK" {
			w.other = append(w.other, fmt.Sprintf("SET %s: %v", key, v))
		}
		w.last[key] = val
		if v, err = w.do(rc, "GET", key); errors.Is(err, errStopped) {
			return nil
		} else if err != nil {
			return err
		}
		if v.Str != val {
			w.other = append(w.other, fmt.Sprintf("GET %s after SET %s through the other proxy: %v", key, val, v))
		}
	}
	return nil
}

// 512 of 1024 slots move from group 1 to group 2 while a checked load runs
// through two proxies, and a third proxy is stopped (SIGSTOP) throughout.
// Afterwards every key is on the group owning its slot, none lost, none
// stale; the only errors are the bounded "being moved" kind. The stopped
// proxy does not hold the migration up past its lease, and once continued
// it serves nothing from its stale table.
func TestMigrationUnderLoadThroughTwoProxies(t *testing.T) {
	cl := newCluster(t, 2, "")
	ctx := context.Background()
	assignAll(t, cl.c, 1)
	p1, p2, p3 := cl.proxy(t), cl.proxy(t), cl.proxy(t)
	start := time.Now()
	load(t, p1.Addr, migrationKeys)
	t.Logf("loaded %d keys through the proxy in %s", migrationKeys, time.Since(start).Round(time.Millisecond))

	// The stopped proxy has a session open with a key of a moving slot read.
	stale := dial(t, p3.Addr)
	probe := keyIn("key:", 0, 512)
	expect(t, stale, "v0-"+strings.TrimPrefix(probe, "key:"), "GET", probe)
	if err := p3.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p3.Cont() })

	var stop atomic.Bool
	workers := make([]*worker, 6)
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	for i := range workers {
		workers[i] = &worker{id: i, of: len(workers), proxies: []string{p1.Addr, p2.Addr}}
		wg.Add(1)
		go func(i int) { defer wg.Done(); errs[i] = workers[i].run(&stop) }(i)
	}
	start = time.Now()
	r, err := cl.c.Topom.CreateSlotActionRange(ctx, &topompb.CreateSlotActionRangeRequest{Begin: 0, End: 511, TargetGroupId: 2})
	if err != nil {
		stop.Store(true)
		wg.Wait()
		t.Fatal(err)
	}
	if len(r.GetSlotIds()) != 512 {
		t.Errorf("queued %d slots", len(r.GetSlotIds()))
	}
	waitFirstHalfOnGroup2(t, cl.c, nil)
	took := time.Since(start)
	// Keep the load on a little past the end: the last tables must serve too.
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	tally := collect(t, workers, errs)
	ops, moving, last := tally.ops, tally.moving, tally.last
	t.Logf("512 slots moved in %s under load: %d requests through 2 proxies, %d answered \"being moved, retry\" (retried), %d keys rewritten",
		took.Round(time.Millisecond), ops, moving, len(last))
	if ops < 1000 {
		t.Errorf("the load made too little progress: %d requests", ops)
	}
	if moving > ops/20 {
		t.Errorf("%d of %d requests were refused as being moved, want at most 5%%", moving, ops)
	}

	onB := checkMoved(t, cl.groups[0], cl.groups[1], migrationKeys, last)

	// The stopped proxy: continued, its open session must never be served
	// from the table it had (the probe's slot moved to group 2 meanwhile).
	if err := p3.Cont(); err != nil {
		t.Fatal(err)
	}
	want := onB[probe]
	fencedSeen := false
	testenv.WaitFor(t, waitLong, "the continued proxy to re-sync", func() error {
		v, err := stale.Do("GET", probe)
		if err != nil {
			t.Fatalf("GET through the continued proxy: %v", err)
		}
		switch {
		case v.Err() == "ERR proxy is fenced: its lease with topom ran out; it serves nothing until it has re-synced":
			fencedSeen = true
			return fmt.Errorf("fenced")
		case v.Kind == '-':
			t.Fatalf("GET through the continued proxy: %v", v)
		case v.Str != want:
			t.Fatalf("the continued proxy served %q for %s, want %q: a stale table", v, probe, want)
		}
		return nil
	})
	if !fencedSeen {
		t.Log("the continued proxy had re-synced before the first request was read")
	}
	p3.WaitReady(t, waitLong)
}

// waitFirstHalfOnGroup2 waits until slots 0..511 belong to group 2 with no
// action left; each, if set, sees every ListSlots answer polled meanwhile.
func waitFirstHalfOnGroup2(t *testing.T, c *topom.Client, each func(*topompb.ListSlotsResponse)) {
	t.Helper()
	testenv.WaitFor(t, 300*time.Second, "512 slots to reach group 2", func() error {
		ls, err := c.ListSlots(context.Background())
		if err != nil {
			return err
		}
		if each != nil {
			each(ls)
		}
		left := 0
		for _, m := range ls.GetMappings()[:512] {
			if m.GetGroupId() != 2 || m.GetAction() != nil {
				left++
			}
		}
		if left > 0 {
			return fmt.Errorf("%d slots still moving", left)
		}
		return nil
	})
}

// tally is what a set of workers did, summed.
type tally struct {
	ops, moving, refused int
	last                 map[string]string // the last acknowledged write per key
}

// collect fails the test for a worker that stopped on an error or saw an
// unexpected reply, and sums the rest.
func collect(t *testing.T, workers []*worker, errs []error) tally {
	t.Helper()
	sum := tally{last: map[string]string{}}
	for i, w := range workers {
		if errs[i] != nil {
			t.Fatalf("worker %d: %v", i, errs[i])
		}
		for _, o := range w.other[:min(len(w.other), 10)] {
			t.Errorf("worker %d: %s", i, o)
		}
		if len(w.other) > 0 {
			t.Errorf("worker %d: %d unexpected replies in all", i, len(w.other))
		}
		sum.ops += w.ops
		sum.moving += w.moving
		sum.refused += w.refused
		for k, v := range w.last {
			sum.last[k] = v
		}
	}
	return sum
}

// checkMoved checks key:0..n-1 after slots 0..511 moved from
// group a to group b: each key is on exactly the group owning its slot and
// holds its last acknowledged write (last), else its loaded value. It
// returns b's keys and values.
func checkMoved(t *testing.T, a, b *testenv.Redis, n int, last map[string]string) map[string]string {
	t.Helper()
	onA, onB := dump(t, a), dump(t, b)
	if len(onA)+len(onB) != n {
		t.Errorf("%d + %d keys on the groups, want %d: keys lost or duplicated", len(onA), len(onB), n)
	}
	misplaced := 0
	for k := range onA {
		if topom.SlotOf([]byte(k)) < 512 {
			misplaced++
		}
	}
	for k := range onB {
		if topom.SlotOf([]byte(k)) >= 512 {
			misplaced++
		}
	}
	if misplaced > 0 {
		t.Errorf("%d keys on a group that does not own their slot", misplaced)
	}
	wrong := 0
	for i := 0; i < n; i++ {
		k := migKey(i)
		want, ok := last[k]
		if !ok {
			want = fmt.Sprintf("v0-%d", i)
		}
		got, okA := onA[k]
		if !okA {
			got = onB[k]
		}
		if got != want {
			if wrong < 10 {
				t.Errorf("%s = %q, want the last acknowledged write %q", k, got, want)
			}
			wrong++
		}
	}
	if wrong > 0 {
		t.Errorf("%d keys lost or stale", wrong)
	}
	return onB
}
