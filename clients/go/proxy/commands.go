package proxy

import (
	"bytes"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// How the proxy handles a command.
type cmdKind uint8

const (
	kindKeys    cmdKind = iota // routed by its keys (all in one slot)
	kindLocal                  // answered by the proxy
	kindRefused                // answered with an error
	kindSplit                  // multi-key, split per slot and merged
	kindTx                     // MULTI / EXEC / DISCARD / WATCH / UNWATCH
	kindKeyless                // no keys: sent to any backend (e.g. TIME) -- see refuseKeyless
)

// keySpec locates keys in a command's arguments (Redis 7 key specs, or the
// first/last/step triple of older servers). Indexes count the command name as 0.
type keySpec struct {
	// begin search
	index   int    // fixed start index (when keyword == "")
	keyword string // search for this word (upper case) ...
	from    int    // ... starting at this index (negative: from the end, backwards)
	// find keys
	lastKey int // range: last key relative to the start (-1: last argument, -2: ...)
	step    int
	limit   int // range with lastKey -1: only 1/limit of the remaining args
	numIdx  int // keynum: index of the key count relative to the start (>= 0 when used)
	first   int // keynum: first key relative to the start
	keynum  bool
}

type command struct {
	name     string // lower case, e.g. "get", "object|encoding"
	kind     cmdKind
	refusal  string // error text for kindRefused
	specs    []keySpec
	write    bool
	readonly bool
	subs     map[string]*command // container commands (OBJECT, XINFO, ...)
	metric   string              // label used in metrics ("other" when unknown)
	// counters caches the command's two metric series (set once).
	counters atomic.Pointer[[2]prometheus.Counter]
}

// commandTable is immutable once published; the proxy swaps it atomically
// when it learns the backend's COMMAND reply.
type commandTable struct {
	cmds map[string]*command
}

var unknownCommand = &command{name: "other", kind: kindRefused, metric: "other"}

func (t *commandTable) lookup(args [][]byte) *command {
	name := lowerASCII(args[0])
	c, ok := t.cmds[name]
	if !ok {
		return nil
	}
	if c.subs != nil && len(args) > 1 {
		if sc, ok := c.subs[name+"|"+lowerASCII(args[1])]; ok {
			return sc
		}
	}
	return c
}

func lowerASCII(b []byte) string {
	for _, c := range b {
		if c >= 'A' && c <= 'Z' {
			return string(bytes.ToLower(b))
		}
	}
	return string(b)
}

// keys returns the indexes of the key arguments of args, or ok=false when
// the arguments do not match the spec (wrong arity: the backend will say so).
func (c *command) keys(args [][]byte, dst []int) []int {
	for _, s := range c.specs {
		dst = s.find(args, dst)
	}
	if c.name == "sort" || c.name == "sort_ro" {
		for i := 2; i+1 < len(args); i++ {
			if strings.EqualFold(string(args[i]), "STORE") {
				dst = append(dst, i+1)
			}
		}
	}
	return dst
}

func (s keySpec) find(args [][]byte, dst []int) []int {
	n := len(args)
	start := s.index
	if s.keyword != "" {
		start = -1
		if s.from >= 0 {
			for i := s.from; i < n; i++ {
				if strings.EqualFold(string(args[i]), s.keyword) {
					start = i + 1
					break
				}
			}
		} else {
			for i := n + s.from; i >= 1; i-- {
				if strings.EqualFold(string(args[i]), s.keyword) {
					start = i + 1
					break
				}
			}
		}
		if start < 0 {
			return dst
		}
	}
	if start <= 0 || start >= n {
		return dst
	}
	if s.keynum {
		ni := start + s.numIdx
		if ni >= n {
			return dst
		}
		cnt, ok := parseInt(args[ni])
		if !ok || cnt < 0 {
			return dst
		}
		first := start + s.first
		step := s.step
		if step <= 0 {
			step = 1
		}
		for i, k := first, int64(0); k < cnt && i < n; i, k = i+step, k+1 {
			dst = append(dst, i)
		}
		return dst
	}
	last := start + s.lastKey
	if s.lastKey < 0 {
		last = n + s.lastKey
		if s.limit > 1 && s.lastKey == -1 {
			last = start + (n-start)/s.limit - 1
		}
	}
	step := s.step
	if step <= 0 {
		step = 1
	}
	for i := start; i <= last && i < n; i += step {
		dst = append(dst, i)
	}
	return dst
}

// Refusals: the precise reason goes in the error text.
var refusals = map[string]string{
	"keys":         "KEYS is not supported by the proxy: the keyspace is spread over many servers (use SCAN on each server)",
	"scan":         "SCAN is not supported by the proxy: the keyspace is spread over many servers (scan each server)",
	"randomkey":    "RANDOMKEY is not supported by the proxy: the keyspace is spread over many servers",
	"dbsize":       "DBSIZE is not supported by the proxy: the keyspace is spread over many servers",
	"flushall":     "FLUSHALL is not supported by the proxy: it would reach only one server; flush each server directly",
	"flushdb":      "FLUSHDB is not supported by the proxy: it would reach only one server; flush each server directly",
	"cluster":      "CLUSTER is not supported: this is a topom proxy, not a Redis Cluster node",
	"config":       "CONFIG is not supported by the proxy: configure each server directly",
	"subscribe":    "SUBSCRIBE is not supported by the proxy: pub/sub needs a direct connection to a server",
	"psubscribe":   "PSUBSCRIBE is not supported by the proxy: pub/sub needs a direct connection to a server",
	"ssubscribe":   "SSUBSCRIBE is not supported by the proxy: pub/sub needs a direct connection to a server",
	"unsubscribe":  "UNSUBSCRIBE is not supported by the proxy: pub/sub needs a direct connection to a server",
	"punsubscribe": "PUNSUBSCRIBE is not supported by the proxy: pub/sub needs a direct connection to a server",
	"sunsubscribe": "SUNSUBSCRIBE is not supported by the proxy: pub/sub needs a direct connection to a server",
	"publish":      "PUBLISH is not supported by the proxy: pub/sub needs a direct connection to a server",
	"spublish":     "SPUBLISH is not supported by the proxy: pub/sub needs a direct connection to a server",
	"pubsub":       "PUBSUB is not supported by the proxy: pub/sub needs a direct connection to a server",
	"monitor":      "MONITOR is not supported by the proxy: connect to a server directly",
	"sync":         "SYNC is not supported by the proxy: replication connects to a server directly",
	"psync":        "PSYNC is not supported by the proxy: replication connects to a server directly",
	"replconf":     "REPLCONF is not supported by the proxy: replication connects to a server directly",
	"slaveof":      "SLAVEOF is not supported by the proxy: topom manages replication",
	"replicaof":    "REPLICAOF is not supported by the proxy: topom manages replication",
	"failover":     "FAILOVER is not supported by the proxy: topom manages failover",
	"shutdown":     "SHUTDOWN is not supported by the proxy: stop servers directly",
	"debug":        "DEBUG is not supported by the proxy: connect to a server directly",
	"save":         "SAVE is not supported by the proxy: connect to each server directly",
	"bgsave":       "BGSAVE is not supported by the proxy: connect to each server directly",
	"bgrewriteaof": "BGREWRITEAOF is not supported by the proxy: connect to each server directly",
	"lastsave":     "LASTSAVE is not supported by the proxy: connect to each server directly",
	"migrate":      "MIGRATE is not supported by the proxy: topom moves keys between groups",
	"move":         "MOVE is not supported by the proxy: only database 0 is served",
	"swapdb":       "SWAPDB is not supported by the proxy: only database 0 is served",
	"script":       "SCRIPT is not supported by the proxy: it would reach only one server; load scripts on each server or use EVAL",
	"function":     "FUNCTION is not supported by the proxy: it would reach only one server; load functions on each server directly",
	"acl":          "ACL is not supported by the proxy: configure each server directly",
	"latency":      "LATENCY is not supported by the proxy: connect to a server directly",
	"memory":       "MEMORY is not supported by the proxy: connect to a server directly",
	"module":       "MODULE is not supported by the proxy: connect to a server directly",
	"slowlog":      "SLOWLOG is not supported by the proxy: connect to a server directly",
	"wait":         "WAIT is not supported by the proxy: it would wait on one server only",
	"waitaof":      "WAITAOF is not supported by the proxy: it would wait on one server only",
	"readonly":     "READONLY is not supported: this is a topom proxy, not a Redis Cluster node",
	"readwrite":    "READWRITE is not supported: this is a topom proxy, not a Redis Cluster node",
	"asking":       "ASKING is not supported: this is a topom proxy, not a Redis Cluster node",
	"time":         "TIME is not supported by the proxy: it would answer for one arbitrary server",
	"lolwut":       "LOLWUT is not supported by the proxy",
	"reset":        "RESET is not supported by the proxy: reconnect instead",
	"client":       "CLIENT: only SETNAME, GETNAME and ID are supported by the proxy",
	"command":      "COMMAND is not supported by the proxy",
	"object|help":  "OBJECT HELP is not supported by the proxy",
}

// Blocking commands hold a backend connection that other clients share.
var blocking = []string{"blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop"}

var locals = []string{"ping", "echo", "quit", "select", "auth", "hello", "info"}
var splits = []string{"mget", "mset", "del", "exists", "unlink", "touch"}
var txs = []string{"multi", "exec", "discard", "watch", "unwatch"}

// finish sets kinds and refusals on a table of commands with key specs.
func finish(cmds map[string]*command) *commandTable {
	for _, name := range locals {
		cmds[name] = &command{name: name, kind: kindLocal}
	}
	cl := &command{name: "client", kind: kindLocal, subs: map[string]*command{}}
	cmds["client"] = cl
	for name, why := range refusals {
		if name == "client" {
			continue
		}
		c := cmds[name]
		if c == nil {
			c = &command{name: name}
			cmds[name] = c
		}
		c.kind, c.refusal = kindRefused, why
	}
	for _, name := range blocking {
		c := cmds[name]
		if c == nil {
			c = &command{name: name}
			cmds[name] = c
		}
		c.kind = kindRefused
		c.refusal = strings.ToUpper(name) + " is not supported by the proxy: blocking commands would stall a backend connection other clients share"
	}
	for _, name := range splits {
		c := cmds[name]
		if c == nil {
			c = &command{name: name, specs: []keySpec{{index: 1, lastKey: -1, step: 1}}}
			if name == "mset" {
				c.specs[0].step = 2
			}
			cmds[name] = c
		}
		c.kind = kindSplit
	}
	for _, name := range txs {
		c := cmds[name]
		if c == nil {
			c = &command{name: name}
			cmds[name] = c
		}
		c.kind = kindTx
		if name == "watch" {
			c.specs = []keySpec{{index: 1, lastKey: -1, step: 1}}
		}
	}
	// XREAD / XREADGROUP with BLOCK are refused at run time (see session).
	for name, c := range cmds {
		c.metric = strings.ReplaceAll(name, "|", "_")
		for sn, sc := range c.subs {
			sc.metric = strings.ReplaceAll(sn, "|", "_")
			switch why, ok := refusals[sn]; {
			case c.kind == kindRefused: // CONFIG GET is refused as CONFIG is
				sc.kind, sc.refusal = kindRefused, c.refusal
			case ok:
				sc.kind, sc.refusal = kindRefused, why
			case sc.kind == kindKeys && len(sc.specs) == 0:
				sc.kind = kindRefused
				sc.refusal = strings.ToUpper(strings.ReplaceAll(sn, "|", " ")) +
					" is not supported by the proxy: it names no key, so no single server answers for the cluster"
			}
		}
		if c.kind == kindKeys && len(c.specs) == 0 && c.subs == nil && c.name != "sort" {
			// A keyless command would reach one arbitrary server.
			c.kind = kindRefused
			c.refusal = strings.ToUpper(name) + " is not supported by the proxy: it names no key, so no single server answers for the cluster"
		}
	}
	return &commandTable{cmds: cmds}
}

// staticTable is used until a backend's COMMAND reply has been read, and
// for servers (codis-server 3.2) whose COMMAND has only first/last/step.
// Entries: name, first, last, step.
var staticKeys = []struct {
	name              string
	first, last, step int
}{
	{"get", 1, 1, 1}, {"set", 1, 1, 1}, {"setnx", 1, 1, 1}, {"setex", 1, 1, 1}, {"psetex", 1, 1, 1},
	{"getset", 1, 1, 1}, {"getdel", 1, 1, 1}, {"getex", 1, 1, 1}, {"append", 1, 1, 1}, {"strlen", 1, 1, 1},
	{"incr", 1, 1, 1}, {"decr", 1, 1, 1}, {"incrby", 1, 1, 1}, {"decrby", 1, 1, 1}, {"incrbyfloat", 1, 1, 1},
	{"getrange", 1, 1, 1}, {"setrange", 1, 1, 1}, {"getbit", 1, 1, 1}, {"setbit", 1, 1, 1}, {"bitcount", 1, 1, 1},
	{"bitpos", 1, 1, 1}, {"bitfield", 1, 1, 1}, {"expire", 1, 1, 1}, {"pexpire", 1, 1, 1}, {"expireat", 1, 1, 1},
	{"pexpireat", 1, 1, 1}, {"ttl", 1, 1, 1}, {"pttl", 1, 1, 1}, {"persist", 1, 1, 1}, {"type", 1, 1, 1},
	{"dump", 1, 1, 1}, {"restore", 1, 1, 1}, {"rename", 1, 2, 1}, {"renamenx", 1, 2, 1}, {"copy", 1, 2, 1},
	{"hget", 1, 1, 1}, {"hset", 1, 1, 1}, {"hsetnx", 1, 1, 1}, {"hmset", 1, 1, 1}, {"hmget", 1, 1, 1},
	{"hdel", 1, 1, 1}, {"hexists", 1, 1, 1}, {"hlen", 1, 1, 1}, {"hkeys", 1, 1, 1}, {"hvals", 1, 1, 1},
	{"hgetall", 1, 1, 1}, {"hincrby", 1, 1, 1}, {"hincrbyfloat", 1, 1, 1}, {"hstrlen", 1, 1, 1}, {"hscan", 1, 1, 1},
	{"hrandfield", 1, 1, 1},
	{"lpush", 1, 1, 1}, {"rpush", 1, 1, 1}, {"lpushx", 1, 1, 1}, {"rpushx", 1, 1, 1}, {"lpop", 1, 1, 1},
	{"rpop", 1, 1, 1}, {"llen", 1, 1, 1}, {"lrange", 1, 1, 1}, {"lindex", 1, 1, 1}, {"lset", 1, 1, 1},
	{"lrem", 1, 1, 1}, {"ltrim", 1, 1, 1}, {"linsert", 1, 1, 1}, {"lpos", 1, 1, 1}, {"rpoplpush", 1, 2, 1},
	{"lmove", 1, 2, 1},
	{"sadd", 1, 1, 1}, {"srem", 1, 1, 1}, {"smembers", 1, 1, 1}, {"sismember", 1, 1, 1}, {"smismember", 1, 1, 1},
	{"scard", 1, 1, 1}, {"spop", 1, 1, 1}, {"srandmember", 1, 1, 1}, {"sscan", 1, 1, 1}, {"smove", 1, 2, 1},
	{"sinter", 1, -1, 1}, {"sunion", 1, -1, 1}, {"sdiff", 1, -1, 1}, {"sinterstore", 1, -1, 1},
	{"sunionstore", 1, -1, 1}, {"sdiffstore", 1, -1, 1},
	{"zadd", 1, 1, 1}, {"zrem", 1, 1, 1}, {"zscore", 1, 1, 1}, {"zincrby", 1, 1, 1}, {"zcard", 1, 1, 1},
	{"zcount", 1, 1, 1}, {"zrange", 1, 1, 1}, {"zrevrange", 1, 1, 1}, {"zrangebyscore", 1, 1, 1},
	{"zrevrangebyscore", 1, 1, 1}, {"zrank", 1, 1, 1}, {"zrevrank", 1, 1, 1}, {"zremrangebyrank", 1, 1, 1},
	{"zremrangebyscore", 1, 1, 1}, {"zrangebylex", 1, 1, 1}, {"zrevrangebylex", 1, 1, 1}, {"zlexcount", 1, 1, 1},
	{"zremrangebylex", 1, 1, 1}, {"zscan", 1, 1, 1}, {"zpopmin", 1, 1, 1}, {"zpopmax", 1, 1, 1}, {"zmscore", 1, 1, 1},
	{"pfadd", 1, 1, 1}, {"pfcount", 1, -1, 1}, {"pfmerge", 1, -1, 1},
	{"geoadd", 1, 1, 1}, {"geodist", 1, 1, 1}, {"geohash", 1, 1, 1}, {"geopos", 1, 1, 1},
	{"xadd", 1, 1, 1}, {"xlen", 1, 1, 1}, {"xrange", 1, 1, 1}, {"xrevrange", 1, 1, 1}, {"xdel", 1, 1, 1}, {"xtrim", 1, 1, 1},
	{"sort", 1, 1, 1},
}

// Commands whose keys the first/last/step triple cannot describe.
var movable = map[string]keySpec{
	"eval":        {index: 2, numIdx: 0, first: 1, step: 1, keynum: true},
	"evalsha":     {index: 2, numIdx: 0, first: 1, step: 1, keynum: true},
	"eval_ro":     {index: 2, numIdx: 0, first: 1, step: 1, keynum: true},
	"evalsha_ro":  {index: 2, numIdx: 0, first: 1, step: 1, keynum: true},
	"fcall":       {index: 2, numIdx: 0, first: 1, step: 1, keynum: true},
	"fcall_ro":    {index: 2, numIdx: 0, first: 1, step: 1, keynum: true},
	"zunionstore": {index: 1, lastKey: 0, step: 1},
	"zinterstore": {index: 1, lastKey: 0, step: 1},
	"xread":       {keyword: "STREAMS", from: 1, lastKey: -1, step: 1, limit: 2},
	"xreadgroup":  {keyword: "STREAMS", from: 4, lastKey: -1, step: 1, limit: 2},
}

func staticTable() *commandTable {
	cmds := map[string]*command{}
	for _, k := range staticKeys {
		cmds[k.name] = &command{name: k.name, specs: []keySpec{tripleSpec(k.first, k.last, k.step)}}
	}
	addMovable(cmds)
	return finish(cmds)
}

func addMovable(cmds map[string]*command) {
	for name, s := range movable {
		c := cmds[name]
		if c == nil {
			c = &command{name: name}
			cmds[name] = c
		}
		specs := []keySpec{s}
		if name == "zunionstore" || name == "zinterstore" {
			specs = append(specs, keySpec{index: 2, numIdx: 0, first: 1, step: 1, keynum: true})
		}
		c.specs = specs
	}
}

func tripleSpec(first, last, step int) keySpec {
	if last < 0 {
		return keySpec{index: first, lastKey: last, step: step}
	}
	return keySpec{index: first, lastKey: last - first, step: step}
}

// commands holds the current table; sessions load it per request.
type commands struct{ p atomic.Pointer[commandTable] }
