package proxy

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	topom "github.com/topom/topom/clients/go"
	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

// BenchmarkProxyDuringMigration: redis-benchmark -t set,get through
// topom-proxy, rounds of it for as long as 512 of 1024 slots (about half of
// the -r 100000 keyspace, preloaded) move from group 1 to group 2; it
// reports each round's ops/s and the proxy's error counts.
//
//	TOPOM_BIN=.../release/topom go test -run '^$' -bench ProxyDuringMigration -benchtime 1x ./bench/proxy/
func BenchmarkProxyDuringMigration(b *testing.B) {
	n, clients, pipeline := envInt("N", 200000), envInt("C", 50), envInt("PIPELINE", 16)
	g1, g2 := testenv.StartRedis(b), testenv.StartRedis(b)
	tp := testenv.StartTopom(b, testenv.TopomOptions{})
	setupTopom(b, tp.Addr, g1.Addr)
	c, err := topom.Dial(tp.Addr, topom.WithCallTimeout(20*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.CreateGroup(ctx, 2); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Topom.AddGroupServer(ctx, &topompb.AddGroupServerRequest{GroupId: 2, Addr: g2.Addr, NoSync: true}); err != nil {
		b.Fatal(err)
	}
	p := testenv.StartProxy(b, tp.Addr, strings.Fields(os.Getenv("PROXY_FLAGS"))...)
	p.WaitReady(b, 60*time.Second)
	// Preload the keyspace redis-benchmark -r 100000 uses.
	redisBenchmark(b, p.Addr, 300000, clients, 16)
	base := redisBenchmark(b, p.Addr, n, clients, pipeline)
	b.Logf("before the migration: SET %.0f GET %.0f ops/s", base["SET"].rps, base["GET"].rps)

	start := time.Now()
	if _, err := c.Topom.CreateSlotActionRange(ctx, &topompb.CreateSlotActionRangeRequest{Begin: 0, End: 511, TargetGroupId: 2}); err != nil {
		b.Fatal(err)
	}
	var took time.Duration
	for round := 1; took == 0; round++ {
		res := redisBenchmark(b, p.Addr, n, clients, pipeline)
		left := slotsLeft(b, c)
		b.Logf("round %d (%s into the migration, %d slots left): SET %.0f ops/s (p50 %.2f p99 %.2f ms), GET %.0f ops/s (p50 %.2f p99 %.2f ms)",
			round, time.Since(start).Round(time.Millisecond), left, res["SET"].rps, res["SET"].p50, res["SET"].p99, res["GET"].rps, res["GET"].p50, res["GET"].p99)
		if left == 0 {
			took = time.Since(start)
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("the migration did not finish within 10 minutes (%d slots left)", left)
		}
	}
	// redis-benchmark's own CONFIG GET at start is refused by the proxy:
	// count only the benchmark's commands.
	errs := metricsSum(b, p.Admin, `topom_proxy_command_errors_total{command="set"}`) + metricsSum(b, p.Admin, `topom_proxy_command_errors_total{command="get"}`)
	moving := metricsSum(b, p.Admin, "topom_proxy_slot_moving_errors_total")
	migrated := metricsSum(b, p.Admin, "topom_proxy_migration_requests_total")
	summary := fmt.Sprintf("512 slots moved in %s under redis-benchmark -P %d -c %d; proxy counted %.0f SET/GET errors (%.0f \"being moved\"), %.0f requests through the migration path; keys on group 1: %s, group 2: %s",
		took.Round(time.Millisecond), pipeline, clients, errs, moving, migrated, dbsize(b, g1), dbsize(b, g2))
	b.Log(summary)
	fmt.Println(summary)
	if errs > 0 {
		b.Logf("errors by series: %s; proxy log tail:\n%s", strings.Join(metricsLines(b, p.Admin, "topom_proxy_command_errors_total"), "; "), p.Log(2<<10))
	}
}

func slotsLeft(b *testing.B, c *topom.Client) int {
	ls, err := c.ListSlots(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	left := 0
	for _, m := range ls.GetMappings()[:512] {
		if m.GetGroupId() != 2 || m.GetAction() != nil {
			left++
		}
	}
	return left
}

// metricsSum adds the values of the metric's series on the proxy's
// /metrics (name alone: all its series; with labels: that one).
func metricsSum(b *testing.B, admin, name string) float64 {
	sum := 0.0
	for _, l := range metricsLines(b, admin, name) {
		if f := strings.Fields(l); len(f) == 2 && (f[0] == name || !strings.Contains(name, "{") && strings.HasPrefix(f[0], name+"{")) {
			v, _ := strconv.ParseFloat(f[1], 64)
			sum += v
		}
	}
	return sum
}

// metricsLines returns the lines of /metrics that start with name.
func metricsLines(b *testing.B, admin, name string) []string {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), name) {
			out = append(out, sc.Text())
		}
	}
	return out
}

func dbsize(b *testing.B, r *testenv.Redis) string {
	v, err := r.Do("DBSIZE")
	if err != nil {
		b.Fatal(err)
	}
	return v
}
