package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

// Three real Sentinels watch group 1; its master is killed with SIGKILL.
// Writes through the proxy fail (naming the dead master) until topom
// publishes the promoted replica, then resume on it without restarting
// the proxy.
func TestWritesResumeOnTheNewMasterAfterASentinelFailover(t *testing.T) {
	tp := testenv.StartTopom(t, testenv.TopomOptions{Config: `proxy_lease_ttl = "3s"
sentinel_quorum = 2
sentinel_down_after = "1s"
sentinel_failover_timeout = "5s"
`})
	c := dialTopom(t, tp.Addr)
	ctx := context.Background()
	m := testenv.StartRedis(t)
	r := testenv.StartRedis(t, fmt.Sprintf("replicaof 127.0.0.1 %d", m.Port))
	testenv.WaitFor(t, waitLong, "the replica to follow", func() error {
		info, err := r.Do("INFO", "replication")
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("link not up")
		}
		return nil
	})
	if err := c.CreateGroup(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*testenv.Redis{m, r} {
		if _, err := c.Topom.AddGroupServer(ctx, &topompb.AddGroupServerRequest{GroupId: 1, Addr: s.Addr, NoSync: true}); err != nil {
			t.Fatal(err)
		}
	}
	assignAll(t, c, 1)
	sentinels := []*testenv.Redis{testenv.StartSentinel(t), testenv.StartSentinel(t), testenv.StartSentinel(t)}
	for _, s := range sentinels {
		if _, err := c.Topom.AddSentinel(ctx, &topompb.AddSentinelRequest{Addr: s.Addr}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Topom.ResyncSentinels(ctx, &topompb.ResyncSentinelsRequest{}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, waitLong, "the sentinels to know the replica and each other", func() error {
		for _, s := range sentinels {
			i, err := c.Topom.GetSentinelInfo(ctx, &topompb.GetSentinelInfoRequest{Addr: s.Addr, Monitored: true})
			if err != nil {
				return err
			}
			if len(i.GetMonitored()) != 1 {
				return fmt.Errorf("%s monitors %d groups", s.Addr, len(i.GetMonitored()))
			}
			for _, g := range i.GetMonitored() {
				if len(g.GetReplicas()) == 0 || g.GetMaster()["num-other-sentinels"] != "2" {
					return fmt.Errorf("%s: %d replicas, %s other sentinels", s.Addr, len(g.GetReplicas()), g.GetMaster()["num-other-sentinels"])
				}
			}
		}
		return nil
	})

	p := testenv.StartProxy(t, tp.Addr)
	p.WaitReady(t, waitLong)
	cc := dial(t, p.Addr)
	expect(t, cc, "OK", "SET", "before", "1")
	testenv.WaitFor(t, waitLong, "the write to reach the replica", func() error {
		if v, _ := r.Do("GET", "before"); v != "1" {
			return fmt.Errorf("not replicated")
		}
		return nil
	})

	m.Kill()
	killed := time.Now()
	failures := 0
	var firstErr string
	testenv.WaitFor(t, 120*time.Second, "writes through the proxy to succeed on the new master", func() error {
		v, err := cc.Do("SET", "after", "2")
		if err != nil {
			t.Fatalf("the proxy session broke: %v", err)
		}
		if v.Kind == '-' {
			failures++
			if firstErr == "" {
				firstErr = v.Err()
			}
			return fmt.Errorf("%s", v.Err())
		}
		return nil
	})
	t.Logf("writes resumed %s after kill -9 of the master; %d writes failed meanwhile, first: %q",
		time.Since(killed).Round(time.Millisecond), failures, firstErr)
	if firstErr != "" && !strings.Contains(firstErr, m.Addr) {
		t.Errorf("a write to the dead master failed without naming it: %q", firstErr)
	}
	if v, _ := r.Do("GET", "after"); v != "2" {
		t.Errorf("the write did not land on the promoted replica %s: %q", r.Addr, v)
	}
	expect(t, cc, "1", "GET", "before")
}
