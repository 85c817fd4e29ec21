package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	topom "github.com/topom/topom/clients/go"
	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

// waitLong bounds any condition on a loaded 2-core machine.
const waitLong = 60 * time.Second

// cluster is one topom and one redis-server per group; slots 0..511 belong
// to group 1 and 512..1023 to group 2 (with two groups).
type cluster struct {
	topom  *testenv.Topom
	groups []*testenv.Redis // groups[i] is the master of group i+1
	c      *topom.Client
	// server starts a group's server (nil: redis-server).
	server func(testing.TB, ...string) *testenv.Redis
}

func newCluster(t *testing.T, groups int, topomConfig string) *cluster {
	t.Helper()
	return newClusterOf(t, groups, topomConfig, testenv.StartRedis)
}

// newClusterOf is newCluster with groups served by start (e.g.
// testenv.StartCodisServer).
func newClusterOf(t *testing.T, groups int, topomConfig string, start func(testing.TB, ...string) *testenv.Redis) *cluster {
	t.Helper()
	tp := testenv.StartTopom(t, testenv.TopomOptions{Config: `proxy_lease_ttl = "3s"` + "\n" + topomConfig})
	c, err := topom.Dial(tp.Addr, topom.WithCallTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &cluster{topom: tp, c: c, server: start}
	cl.addGroups(t, groups)
	return cl
}

// addGroups creates groups 1..groups, each served by a new redis-server,
// and splits the slots evenly among them in order.
func (cl *cluster) addGroups(t *testing.T, groups int) {
	t.Helper()
	c := cl.c
	ctx := context.Background()
	for g := 1; g <= groups; g++ {
		start := cl.server
		if start == nil {
			start = testenv.StartRedis
		}
		r := start(t)
		cl.groups = append(cl.groups, r)
		if err := c.CreateGroup(ctx, uint32(g)); err != nil {
			t.Fatalf("CreateGroup %d: %v", g, err)
		}
		if _, err := c.Topom.AddGroupServer(ctx, &topompb.AddGroupServerRequest{GroupId: uint32(g), Addr: r.Addr, NoSync: true}); err != nil {
			t.Fatalf("AddGroupServer %d: %v", g, err)
		}
	}
	per := topom.SlotCount / groups
	for g := 0; g < groups; g++ {
		ids := make([]int, 0, per)
		for s := g * per; s < (g+1)*per; s++ {
			ids = append(ids, s)
		}
		if err := c.AssignSlots(ctx, uint32(g+1), ids...); err != nil {
			t.Fatalf("AssignSlots: %v", err)
		}
	}
}

// proxy starts a topom-proxy and waits until it serves.
func (cl *cluster) proxy(t *testing.T, extra ...string) *testenv.Proxy {
	t.Helper()
	p := testenv.StartProxy(t, cl.topom.Addr, extra...)
	p.WaitReady(t, waitLong)
	return p
}

// groupOf is the group serving key's slot in the initial layout.
func (cl *cluster) groupOf(key string) *testenv.Redis {
	return cl.groups[topom.SlotOf([]byte(key))*len(cl.groups)/topom.SlotCount]
}

// keyIn returns a key (prefix + n) whose slot is in [lo, hi).
func keyIn(prefix string, lo, hi int) string {
	for n := 0; ; n++ {
		k := fmt.Sprintf("%s%d", prefix, n)
		if s := topom.SlotOf([]byte(k)); s >= lo && s < hi {
			return k
		}
	}
}

func dial(t *testing.T, addr string) *testenv.Conn {
	t.Helper()
	c, err := testenv.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do runs one command and returns its reply rendered as text.
func do(t *testing.T, c *testenv.Conn, args ...string) string {
	t.Helper()
	v, err := c.Do(args...)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return v.String()
}

// expect checks one command's rendered reply.
func expect(t *testing.T, c *testenv.Conn, want string, args ...string) {
	t.Helper()
	if got := do(t, c, args...); got != want {
		t.Errorf("%s: got %q, want %q", strings.Join(args, " "), got, want)
	}
}

func dialTopom(t *testing.T, addr string) *topom.Client {
	t.Helper()
	c, err := topom.Dial(addr, topom.WithCallTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// assignAll gives every slot to group gid.
func assignAll(t *testing.T, c *topom.Client, gid uint32) {
	t.Helper()
	ids := make([]int, topom.SlotCount)
	for i := range ids {
		ids[i] = i
	}
	if err := c.AssignSlots(context.Background(), gid, ids...); err != nil {
		t.Fatalf("AssignSlots to group %d: %v", gid, err)
	}
}
