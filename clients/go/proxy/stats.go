package proxy

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/topom/topom/clients/go/topompb"
)

// qps remembers the previous report so each one carries the rate since it.
type qps struct {
	mu   sync.Mutex
	ops  int64
	cpu  time.Duration
	when time.Time
}

// Stats is what the SlotWatcher reports to topom (it shows in GetStats).
func (p *Proxy) Stats() *topompb.ProxyStats {
	now := time.Now()
	ops := p.stats.ops.Load()
	cpu := processCPU()
	p.qps.mu.Lock()
	var rate int64
	var cores float64
	if !p.qps.when.IsZero() {
		if d := now.Sub(p.qps.when).Seconds(); d > 0 {
			rate = int64(float64(ops-p.qps.ops) / d)
			cores = (cpu - p.qps.cpu).Seconds() / d
		}
	}
	p.qps.ops, p.qps.cpu, p.qps.when = ops, cpu, now
	p.qps.mu.Unlock()
	return &topompb.ProxyStats{
		OpsTotal:      ops,
		OpsFails:      p.stats.fails.Load(),
		RedisErrors:   p.stats.redisErrors.Load(),
		OpsQps:        rate,
		SessionsTotal: p.stats.sessionsTotal.Load(),
		SessionsAlive: p.stats.sessionsAlive.Load(),
		Backends:      p.backendConns.Load(),
		RssBytes:      residentBytes(),
		Cpu:           cores,
		Time:          timestamppb.New(now),
	}
}

// processCPU is the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// residentBytes is the process's resident set (Linux /proc; 0 elsewhere).
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
