package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

// With --read-replicas, reads go to the nearest replica topom lists for the
// proxy's datacenter, writes to the master; without it, everything goes to
// the master. The three servers are independent (no replication), each
// holding its own value of "who", so a reply names the server that read it.
func TestReadsGoToTheReplicaOfTheProxysDatacenter(t *testing.T) {
	cl := newCluster(t, 1, "")
	master := cl.groups[0]
	ra, rb := testenv.StartRedis(t), testenv.StartRedis(t)
	ctx := context.Background()
	for _, s := range []struct {
		r  *testenv.Redis
		dc string
	}{{ra, "dc-a"}, {rb, "dc-b"}} {
		if _, err := cl.c.Topom.AddGroupServer(ctx, &topompb.AddGroupServerRequest{GroupId: 1, Addr: s.r.Addr, Datacenter: s.dc, NoSync: true}); err != nil {
			t.Fatalf("AddGroupServer %s: %v", s.r.Addr, err)
		}
		if _, err := cl.c.Topom.SetReplicaGroup(ctx, &topompb.SetReplicaGroupRequest{GroupId: 1, Addr: s.r.Addr, Enabled: true}); err != nil {
			t.Fatalf("SetReplicaGroup %s: %v", s.r.Addr, err)
		}
	}
	for r, v := range map[*testenv.Redis]string{master: "master", ra: "replica-a", rb: "replica-b"} {
		if got, err := r.Do("SET", "who", v); err != nil || got != "OK" {
			t.Fatalf("SET who on %s: %v %v", r.Addr, got, err)
		}
	}
	pa := cl.proxy(t, "--datacenter", "dc-a", "--read-replicas")
	pb := cl.proxy(t, "--datacenter", "dc-b", "--read-replicas")
	plain := cl.proxy(t, "--datacenter", "dc-a")
	for _, c := range []struct {
		p    *testenv.Proxy
		want string
	}{{pa, "replica-a"}, {pb, "replica-b"}, {plain, "master"}} {
		conn := dial(t, c.p.Addr)
		// The servers joined after the first table: wait for the update
		// that lists them as replicas.
		testenv.WaitFor(t, waitLong, "GET who through "+c.p.Addr+" to read "+c.want, func() error {
			if got := do(t, conn, "GET", "who"); got != c.want {
				return fmt.Errorf("GET who = %q", got)
			}
			return nil
		})
		expect(t, conn, c.want, "GETRANGE", "who", "0", "-1") // another read-only command
		expect(t, conn, "OK", "SET", "w-"+c.want, "1")
	}
	// Every write went to the master.
	for _, k := range []string{"w-replica-a", "w-replica-b", "w-master"} {
		if got, err := master.Do("GET", k); err != nil || got != "1" {
			t.Errorf("write %s: %q on the master (%v)", k, got, err)
		}
	}
}
