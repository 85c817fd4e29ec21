package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

// The proxy's own counters reach topom on the slot stream and show in
// GetStats under its record.
func TestProxyStatsShowInGetStats(t *testing.T) {
	cl := newCluster(t, 1, "")
	p := cl.proxy(t)
	c := dial(t, p.Addr)
	const n = 100
	for i := 0; i < n; i++ {
		expect(t, c, "OK", "SET", fmt.Sprintf("k%d", i), "v")
	}
	// One refused command and one error from the backend.
	expect(t, c, "(error) ERR KEYS is not supported by the proxy: the keyspace is spread over many servers (use SCAN on each server)", "KEYS", "*")
	expect(t, c, "(error) WRONGTYPE Operation against a key holding the wrong kind of value", "LPUSH", "k0", "x")

	var got *topompb.ProxyStats
	// The watcher reports every 5 s.
	testenv.WaitFor(t, waitLong, "GetStats to show the proxy's counters", func() error {
		resp, err := cl.c.Topom.GetStats(context.Background(), &topompb.GetStatsRequest{})
		if err != nil {
			return err
		}
		for _, e := range resp.GetStats().GetProxies() {
			if e.GetProxy().GetProxyAddr() != p.Addr {
				continue
			}
			got = e.GetStats()
			if got.GetOpsTotal() < n+2 {
				return fmt.Errorf("ops_total %d, want >= %d", got.GetOpsTotal(), n+2)
			}
			return nil
		}
		return fmt.Errorf("no entry for %s in GetStats", p.Addr)
	})
	if got.GetOpsFails() < 2 || got.GetRedisErrors() < 1 {
		t.Errorf("ops_fails %d redis_errors %d, want >= 2 and >= 1", got.GetOpsFails(), got.GetRedisErrors())
	}
	if got.GetSessionsAlive() < 1 || got.GetSessionsTotal() < 1 || got.GetBackends() < 1 {
		t.Errorf("sessions alive %d total %d, backends %d: want each >= 1", got.GetSessionsAlive(), got.GetSessionsTotal(), got.GetBackends())
	}
	if got.GetRssBytes() < 1<<20 || got.GetTime() == nil {
		t.Errorf("rss_bytes %d, time %v: want the process's resident memory and a timestamp", got.GetRssBytes(), got.GetTime())
	}
}
