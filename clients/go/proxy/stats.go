package proxy

import (
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/topom/topom/clients/go/topompb"
)

// qps remembers the previous report so each one carries the rate since it.
type qps struct {
	mu   sync.Mutex
	ops  int64
	when time.Time
}

// Stats is what the SlotWatcher reports to topom (it shows in GetStats).
func (p *Proxy) Stats() *topompb.ProxyStats {
	now := time.Now()
	ops := p.stats.ops.Load()
	p.qps.mu.Lock()
	var rate int64
	if !p.qps.when.IsZero() {
		if d := now.Sub(p.qps.when).Seconds(); d > 0 {
			rate = int64(float64(ops-p.qps.ops) / d)
		}
	}
	p.qps.ops, p.qps.when = ops, now
	p.qps.mu.Unlock()
	return &topompb.ProxyStats{
		OpsTotal:      ops,
		OpsFails:      p.stats.fails.Load(),
		RedisErrors:   p.stats.redisErrors.Load(),
		OpsQps:        rate,
		SessionsTotal: p.stats.sessionsTotal.Load(),
		SessionsAlive: p.stats.sessionsAlive.Load(),
		Backends:      p.backendConns.Load(),
		Time:          timestamppb.New(now),
	}
}
