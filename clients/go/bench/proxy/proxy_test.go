// Package proxy benchmarks topom-proxy against a direct redis-server and the
// real codis-proxy with redis-benchmark. It is a report, not a pass/fail
// test: run it with
//
//	TOPOM_BIN=/work/bin/topom go test -run '^$' -bench Proxy -benchtime 1x -timeout 60m ./bench/proxy/
package proxy

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/topom/topom/clients/go/internal/testenv"
)

// result is one redis-benchmark line.
type result struct{ rps, p50, p99 float64 }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// redisBenchmark runs redis-benchmark -t set,get against addr and returns
// the figures per test ("SET", "GET").
func redisBenchmark(b *testing.B, addr string, n, clients, pipeline int) map[string]result {
	b.Helper()
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command("redis-benchmark", "-h", host, "-p", port, "-t", "set,get", "-n", strconv.Itoa(n),
		"-c", strconv.Itoa(clients), "-P", strconv.Itoa(pipeline), "-r", "100000", "--csv")
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("redis-benchmark against %s: %v\n%s", addr, err, out)
	}
	rows, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		b.Fatalf("redis-benchmark csv: %v\n%s", err, out)
	}
	res := map[string]result{}
	for _, r := range rows[1:] { // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
		if len(r) < 7 {
			continue
		}
		f := func(i int) float64 { v, _ := strconv.ParseFloat(r[i], 64); return v }
		res[r[0]] = result{rps: f(1), p50: f(4), p99: f(6)}
	}
	return res
}

// startCodisProxy runs the real codis-proxy in front of backend with a
// fixed slot table (--fillslots: every slot on backend, no dashboard).
func startCodisProxy(b *testing.B, backend string) (string, int) {
	b.Helper()
	bin := testenv.CodisBin(b, "codis-proxy")
	tmp := b.TempDir()
	type slot struct {
		ID      int    `json:"id"`
		Backend string `json:"backend_addr"`
	}
	slots := make([]slot, 1024)
	for i := range slots {
		slots[i] = slot{ID: i, Backend: backend}
	}
	js, _ := json.Marshal(slots)
	_ = os.WriteFile(filepath.Join(tmp, "slots.json"), js, 0o644)
	port, admin := testenv.FreePort(b), testenv.FreePort(b)
	conf := fmt.Sprintf("product_name = \"bench\"\nadmin_addr = \"127.0.0.1:%d\"\nproxy_addr = \"127.0.0.1:%d\"\nproto_type = \"tcp4\"\n", admin, port)
	_ = os.WriteFile(filepath.Join(tmp, "proxy.toml"), []byte(conf), 0o644)
	cmd := exec.Command(bin, "--config", filepath.Join(tmp, "proxy.toml"), "--fillslots", filepath.Join(tmp, "slots.json"),
		"--log", filepath.Join(tmp, "proxy.log"))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	testenv.WaitFor(b, 30*time.Second, "codis-proxy to serve", func() error {
		c, err := testenv.Dial(addr)
		if err != nil {
			return err
		}
		defer c.Close()
		v, err := c.Do("SET", "probe", "1")
		if err != nil {
			return err
		}
		if v.Kind == '-' {
			return fmt.Errorf("%s", v.Err())
		}
		return nil
	})
	return addr, cmd.Process.Pid
}

func median(xs []float64) float64 {
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// BenchmarkProxy: direct, topom-proxy and codis-proxy, each in front of its
// own redis-server of the same binary, -P 1 and -P 16, ROUNDS rounds with
// the targets alternating; medians are reported.
func BenchmarkProxy(b *testing.B) {
	n, clients, rounds := envInt("N", 500000), envInt("C", 50), envInt("ROUNDS", 2)
	direct := testenv.StartRedis(b)
	viaTopom := testenv.StartRedis(b)
	viaCodis := testenv.StartRedis(b)

	tp := testenv.StartTopom(b, testenv.TopomOptions{})
	setupTopom(b, tp.Addr, viaTopom.Addr)
	flags := strings.Fields(os.Getenv("PROXY_FLAGS"))
	profDir := os.Getenv("PROFILE_DIR") // CPU profiles of topom-proxy, one per -P
	if profDir != "" {
		flags = append(flags, "--pprof")
	}
	if g := os.Getenv("PROXY_GOMAXPROCS"); g != "" {
		b.Setenv("GOMAXPROCS", g) // inherited by topom-proxy only: codis-proxy sets its own from --ncpu
	}
	p := testenv.StartProxy(b, tp.Addr, flags...)
	os.Unsetenv("GOMAXPROCS")
	p.WaitReady(b, 60*time.Second)
	codis, codisPid := startCodisProxy(b, viaCodis.Addr)

	type target struct {
		name, addr string
		pid        int // the process whose CPU is counted (the proxy, or redis-server for direct)
	}
	targets := []target{{"direct", direct.Addr, direct.Pid()}, {"topom-proxy", p.Addr, p.Pid()}, {"codis-proxy", codis, codisPid}}
	if bin := os.Getenv("PROXY_B_BIN"); bin != "" {
		// Another build of topom-proxy (e.g. before a change), same backend.
		pb := testenv.StartProxyBin(b, bin, tp.Addr, flags...)
		pb.WaitReady(b, 60*time.Second)
		targets = append(targets, target{"proxy-b", pb.Addr, pb.Pid()})
	}
	type key struct {
		target, test string
		pipeline     int
	}
	all := map[key][]result{}
	// CPU per request of each target's process: throughput on this shared
	// 2-core machine moves with the load, CPU per request much less.
	cpuPerOp := map[key][]float64{}
	pipelines := []int{1, 16}
	if v := envInt("PIPELINE", 0); v > 0 { // one depth only, for quicker comparisons
		pipelines = []int{v}
	}
	for round := 0; round < rounds; round++ {
		for _, pl := range pipelines {
			for _, tg := range targets {
				var prof chan struct{}
				if profDir != "" && tg.name == "topom-proxy" && round == 0 {
					prof = profile(b, p.Admin, filepath.Join(profDir, fmt.Sprintf("cpu-P%d.pprof", pl)))
				}
				cpu0 := testenv.CPUOf(tg.pid)
				res := redisBenchmark(b, tg.addr, n, clients, pl)
				cpuPerOp[key{tg.name, "", pl}] = append(cpuPerOp[key{tg.name, "", pl}], float64((testenv.CPUOf(tg.pid)-cpu0).Microseconds())/float64(2*n))
				if prof != nil {
					<-prof
				}
				for test, r := range res {
					all[key{tg.name, test, pl}] = append(all[key{tg.name, test, pl}], r)
					b.Logf("round %d -P %-2d %-11s %s %9.0f ops/s p50 %.3f ms p99 %.3f ms", round+1, pl, tg.name, test, r.rps, r.p50, r.p99)
				}
			}
		}
	}
	med := func(k key) result {
		var rps, p50, p99 []float64
		for _, r := range all[k] {
			rps, p50, p99 = append(rps, r.rps), append(p50, r.p50), append(p99, r.p99)
		}
		if len(rps) == 0 {
			return result{}
		}
		return result{median(rps), median(p50), median(p99)}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nredis-benchmark -t set,get -n %d -c %d, medians of %d rounds (loadavg at end: %s)\n", n, clients, rounds, loadavg())
	fmt.Fprintf(&sb, "%-4s %-4s %-12s %10s %8s %8s\n", "-P", "test", "target", "ops/s", "p50 ms", "p99 ms")
	for _, pl := range pipelines {
		for _, test := range []string{"SET", "GET"} {
			for _, tg := range targets {
				r := med(key{tg.name, test, pl})
				fmt.Fprintf(&sb, "%-4d %-4s %-12s %10.0f %8.3f %8.3f\n", pl, test, tg.name, r.rps, r.p50, r.p99)
			}
			d, tpx, cx := med(key{"direct", test, pl}), med(key{"topom-proxy", test, pl}), med(key{"codis-proxy", test, pl})
			fmt.Fprintf(&sb, "     ratios: topom/codis %.2f  topom/direct %.2f  codis/direct %.2f", tpx.rps/cx.rps, tpx.rps/d.rps, cx.rps/d.rps)
			if pb := med(key{"proxy-b", test, pl}); pb.rps > 0 {
				fmt.Fprintf(&sb, "  proxy-b/codis %.2f", pb.rps/cx.rps)
			}
			sb.WriteString("\n")
		}
		sb.WriteString("     CPU µs per request (SET+GET, median):")
		for _, tg := range targets {
			fmt.Fprintf(&sb, " %s %.2f", tg.name, median(cpuPerOp[key{tg.name, "", pl}]))
		}
		sb.WriteString("\n")
	}
	b.Log(sb.String())
	fmt.Print(sb.String())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// profile fetches a CPU profile of the next 5 s from the proxy's admin port
// into path; the channel closes when it is written.
func profile(b *testing.B, admin, path string) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get("http://" + admin + "/debug/pprof/profile?seconds=5")
		if err != nil {
			b.Logf("profile: %v", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			b.Logf("profile: %v", err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}()
	return done
}
