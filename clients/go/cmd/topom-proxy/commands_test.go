package main

import (
	"fmt"
	"strings"
	"testing"

	topom "github.com/topom/topom/clients/go"
)

// Command families through one proxy over two groups: each reply is what
// redis-server gives, and the keys land on the group owning their slot.
func TestCommandFamiliesThroughTheProxy(t *testing.T) {
	cl := newCluster(t, 2, "")
	p := cl.proxy(t)
	c := dial(t, p.Addr)
	lo := func(p string) string { return keyIn(p, 0, 512) }
	hi := func(p string) string { return keyIn(p, 512, 1024) }

	// strings
	s1, s2 := lo("str:"), hi("str:")
	expect(t, c, "OK", "SET", s1, "v1")
	expect(t, c, "OK", "SET", s2, "v2")
	expect(t, c, "v1", "GET", s1)
	expect(t, c, "4", "APPEND", s2, "xx")
	expect(t, c, "v2xx", "GET", s2)
	expect(t, c, "5", "INCRBY", lo("ctr:"), "5")
	expect(t, c, "(nil)", "GET", hi("missing:"))
	expect(t, c, "OK", "SETEX", hi("ttl:"), "100", "x")
	expect(t, c, "100", "TTL", hi("ttl:"))
	if got, _ := cl.groups[0].Do("GET", s1); got != "v1" {
		t.Errorf("%s is not on group 1 (slots 0..511): %q", s1, got)
	}
	if got, _ := cl.groups[1].Do("GET", s2); got != "v2xx" {
		t.Errorf("%s is not on group 2 (slots 512..1023): %q", s2, got)
	}
	// hashes
	h := hi("hash:")
	expect(t, c, "2", "HSET", h, "a", "1", "b", "2")
	expect(t, c, "1", "HGET", h, "a")
	expect(t, c, "12", "HINCRBY", h, "b", "10")
	expect(t, c, "[a 1 b 12]", "HGETALL", h)
	// lists
	l := lo("list:")
	expect(t, c, "3", "RPUSH", l, "a", "b", "c")
	expect(t, c, "4", "LPUSH", l, "z")
	expect(t, c, "[z a b c]", "LRANGE", l, "0", "-1")
	expect(t, c, "c", "RPOP", l)
	// sets
	st := hi("set:")
	expect(t, c, "3", "SADD", st, "x", "y", "z")
	expect(t, c, "1", "SISMEMBER", st, "y")
	expect(t, c, "3", "SCARD", st)
	// sorted sets
	z := lo("zset:")
	expect(t, c, "2", "ZADD", z, "1", "one", "2", "two")
	expect(t, c, "5", "ZINCRBY", z, "4", "one")
	expect(t, c, "[two 2 one 5]", "ZRANGE", z, "0", "-1", "WITHSCORES")
	// keys, with hash tags so the two-key commands share a slot
	expect(t, c, "OK", "SET", "{user1}.a", "1")
	expect(t, c, "OK", "RENAME", "{user1}.a", "{user1}.b")
	expect(t, c, "string", "TYPE", "{user1}.b")
	expect(t, c, "1", "EXPIRE", "{user1}.b", "100")
	expect(t, c, "1", "PERSIST", "{user1}.b")
	expect(t, c, "-1", "TTL", "{user1}.b")
	if got := do(t, c, "RENAME", s1, s2); !strings.HasPrefix(got, "(error) CROSSSLOT keys of 'rename' map to different slots") {
		t.Errorf("RENAME across slots: %q", got)
	}
	// scripts: every key in one slot
	expect(t, c, "[{user1}.b 7]", "EVAL", "redis.call('SET', KEYS[1], ARGV[1]); return {KEYS[1], redis.call('GET', KEYS[1])}", "1", "{user1}.b", "7")
	if got := do(t, c, "EVAL", "return 1", "2", s1, s2); !strings.HasPrefix(got, "(error) CROSSSLOT keys of 'eval' map to different slots") {
		t.Errorf("EVAL across slots: %q", got)
	}
	expect(t, c, "(error) NOSCRIPT No matching script. Please use EVAL.", "EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "1", "{user1}.b")
	// transactions on one slot
	expect(t, c, "OK", "MULTI")
	expect(t, c, "QUEUED", "INCR", "{tx}.n")
	expect(t, c, "QUEUED", "INCR", "{tx}.n")
	expect(t, c, "QUEUED", "GET", "{tx}.n")
	expect(t, c, "[1 2 2]", "EXEC")
	expect(t, c, "OK", "MULTI")
	expect(t, c, "QUEUED", "SET", s1, "x")
	expect(t, c, fmt.Sprintf("(error) CROSSSLOT the keys of this transaction map to different slots (%d and %d); the proxy runs MULTI/EXEC and WATCH only when every key shares one slot: use a {hash tag}",
		topom.SlotOf([]byte(s1)), topom.SlotOf([]byte(s2))), "SET", s2, "y")
	expect(t, c, "(error) EXECABORT Transaction discarded because of previous errors.", "EXEC")
	expect(t, c, "v1", "GET", s1)
	expect(t, c, "(error) ERR EXEC without MULTI", "EXEC")
	expect(t, c, "OK", "WATCH", "{tx}.n")
	expect(t, c, "OK", "MULTI")
	expect(t, c, "QUEUED", "INCR", "{tx}.n")
	expect(t, c, "[3]", "EXEC")

	// multi-key commands split by slot and merged in argument order
	a, b, d := lo("mk:"), hi("mk:"), hi("mk2:")
	expect(t, c, "OK", "MSET", a, "A", b, "B", d, "D")
	expect(t, c, "[A B (nil) D]", "MGET", a, b, hi("nokey:"), d)
	expect(t, c, "3", "EXISTS", a, b, d)
	expect(t, c, "2", "DEL", a, b, hi("nokey:"))
	expect(t, c, "1", "EXISTS", a, b, d)
	expect(t, c, "1", "UNLINK", d)
	if got, _ := cl.groups[0].Do("EXISTS", a); got != "0" {
		t.Errorf("DEL did not reach group 1: EXISTS %s = %s", a, got)
	}

	// proxy-local commands
	expect(t, c, "PONG", "PING")
	expect(t, c, "hi", "ECHO", "hi")
	expect(t, c, "OK", "SELECT", "0")
	expect(t, c, "(error) ERR SELECT: the proxy serves database 0 only", "SELECT", "1")
	expect(t, c, "OK", "CLIENT", "SETNAME", "tester")
	expect(t, c, "tester", "CLIENT", "GETNAME")
	if got := do(t, c, "INFO"); !strings.Contains(got, "proxy:topom-proxy") || !strings.Contains(got, "state:serving") {
		t.Errorf("INFO: %q", got)
	}
	expect(t, c, "OK", "QUIT")
	if _, err := c.Receive(); err == nil {
		t.Error("the connection stays open after QUIT")
	}
}

// Every refused command answers its precise error and the session goes on.
func TestRefusedCommandsSayWhy(t *testing.T) {
	cl := newCluster(t, 2, "")
	p := cl.proxy(t)
	c := dial(t, p.Addr)
	cases := [][]string{
		{"KEYS is not supported by the proxy: the keyspace is spread over many servers (use SCAN on each server)", "KEYS", "*"},
		{"SCAN is not supported by the proxy: the keyspace is spread over many servers (scan each server)", "SCAN", "0"},
		{"FLUSHALL is not supported by the proxy: it would reach only one server; flush each server directly", "FLUSHALL"},
		{"FLUSHDB is not supported by the proxy: it would reach only one server; flush each server directly", "FLUSHDB"},
		{"CLUSTER is not supported: this is a topom proxy, not a Redis Cluster node", "CLUSTER", "INFO"},
		{"CONFIG is not supported by the proxy: configure each server directly", "CONFIG", "GET", "maxmemory"},
		{"BLPOP is not supported by the proxy: blocking commands would stall a backend connection other clients share", "BLPOP", "q", "0"},
		{"BRPOP is not supported by the proxy: blocking commands would stall a backend connection other clients share", "BRPOP", "q", "0"},
		{"BLMOVE is not supported by the proxy: blocking commands would stall a backend connection other clients share", "BLMOVE", "a", "b", "LEFT", "LEFT", "0"},
		{"BZPOPMIN is not supported by the proxy: blocking commands would stall a backend connection other clients share", "BZPOPMIN", "z", "0"},
		{"XREAD with BLOCK is not supported by the proxy: blocking commands would stall a backend connection other clients share", "XREAD", "BLOCK", "0", "STREAMS", "s", "$"},
		{"SUBSCRIBE is not supported by the proxy: pub/sub needs a direct connection to a server", "SUBSCRIBE", "ch"},
		{"PSUBSCRIBE is not supported by the proxy: pub/sub needs a direct connection to a server", "PSUBSCRIBE", "ch*"},
		{"PUBLISH is not supported by the proxy: pub/sub needs a direct connection to a server", "PUBLISH", "ch", "m"},
		{"MONITOR is not supported by the proxy: connect to a server directly", "MONITOR"},
		{"SCRIPT is not supported by the proxy: it would reach only one server; load scripts on each server or use EVAL", "SCRIPT", "LOAD", "return 1"},
		{"MIGRATE is not supported by the proxy: topom moves keys between groups", "MIGRATE", "h", "1", "k", "0", "1"},
		{"WAIT is not supported by the proxy: it would wait on one server only", "WAIT", "1", "0"},
		{"DBSIZE is not supported by the proxy: the keyspace is spread over many servers", "DBSIZE"},
		{"RANDOMKEY is not supported by the proxy: the keyspace is spread over many servers", "RANDOMKEY"},
		{"SLAVEOF is not supported by the proxy: topom manages replication", "SLAVEOF", "no", "one"},
		{"SHUTDOWN is not supported by the proxy: stop servers directly", "SHUTDOWN"},
		{"TIME is not supported by the proxy: it would answer for one arbitrary server", "TIME"},
		{"CLIENT LIST is not supported by the proxy: only CLIENT SETNAME, GETNAME and ID are", "CLIENT", "LIST"},
		{"unknown command 'NOSUCHCMD' (the proxy routes only commands its backends list in COMMAND)", "NOSUCHCMD", "x"},
		{"CROSSSLOT keys of 'sunionstore' map to different slots", "SUNIONSTORE", keyIn("d", 0, 512), keyIn("s", 512, 1024)},
		{"SELECT: the proxy serves database 0 only", "SELECT", "3"},
	}
	for _, tc := range cases {
		want := tc[0]
		v, err := c.Do(tc[1:]...)
		if err != nil {
			t.Fatalf("%v: %v", tc[1:], err)
		}
		got := strings.TrimPrefix(strings.TrimPrefix(v.Err(), "ERR "), "")
		if strings.HasPrefix(want, "CROSSSLOT") {
			got = v.Err()
			if !strings.HasPrefix(got, want) {
				t.Errorf("%v: got %q, want prefix %q", tc[1:], got, want)
			}
			continue
		}
		if got != want {
			t.Errorf("%v: got %q (kind %q), want %q", tc[1:], got, v.Kind, want)
		}
	}
	expect(t, c, "PONG", "PING")
}
