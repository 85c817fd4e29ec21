package proxy

import (
	"net"
	"strconv"
	"time"

	"github.com/topom/topom/clients/go/topompb"
)

const methodSemiAsync = topompb.ForwardMethod_FORWARD_METHOD_SEMI_ASYNC

// forwardMigrating serves a request of a slot whose keys are moving from
// rt.from to rt.backend (the contract on topom.v1.ForwardMethod):
//
//   - plain Redis: MIGRATE each key from the source to the target (a key
//     the source no longer holds answers NOKEY, which is fine), then send
//     the command to the target;
//   - codis-server, SYNC: SLOTSMGRTTAGONE each key (it moves the key and
//     every key sharing its {tag}), then the command to the target;
//   - codis-server, SEMI_ASYNC: SLOTSMGRT-EXEC-WRAPPER on the source, which
//     answers [code, reply]: 0 (the key is not on the source: send the
//     command to the target), 1 (the key is being migrated right now: retry
//     after a short, growing wait) or 2 (the source ran it: its reply). This
//     is what codis-server 3.2 answers (0 comes with "the specified key
//     doesn't exist") and how codis-proxy reads it (forward.go).
//
// It runs in the session's reader, like codis-proxy: the session's later
// requests wait, so one client's commands keep their order. rt's ref is
// released when the reply is back.
func (p *Proxy) forwardMigrating(rt route, raw []byte, keys [][]byte, seed uint32, done func([]byte)) {
	p.metrics.migrations.Inc()
	src := rt.from.pick(seed)
	kind := p.serverKind(rt.from, src)
	if kind == serverCodis && rt.method == methodSemiAsync && len(keys) > 0 {
		p.semiAsync(rt, src, raw, keys[0], seed, done)
		return
	}
	if msg := p.moveKeys(rt, src, kind, keys); msg != "" {
		rt.done()
		done(replyError(msg))
		return
	}
	p.sendTarget(rt, raw, seed, done)
}

func (p *Proxy) sendTarget(rt route, raw []byte, seed uint32, done func([]byte)) {
	rt.backend.pick(seed).send(&call{data: raw, replies: 1, done: func(reply []byte, err error) {
		rt.done()
		if err != nil {
			p.metrics.backendErrors.Inc()
			done(replyError("ERR " + err.Error()))
			return
		}
		done(reply)
	}})
}

// serverKind tells codis-server from plain Redis (learned when the pool's
// first connection was made; asked now if not yet).
func (p *Proxy) serverKind(pool *backendPool, c *backendConn) int32 {
	if k := pool.kind.Load(); k != serverUnknown {
		return k
	}
	_, _ = c.do(encodeStrings("PING")) // waits for the connection and its probe
	if k := pool.kind.Load(); k != serverUnknown {
		return k
	}
	return serverRedis
}

// moveKeys moves each key from the source to the target synchronously and
// returns an error reply text, or "".
func (p *Proxy) moveKeys(rt route, src *backendConn, kind int32, keys [][]byte) string {
	host, port, err := net.SplitHostPort(rt.backend.addr)
	if err != nil {
		return "ERR bad target address " + rt.backend.addr
	}
	timeout := strconv.Itoa(int(p.cfg.MigrateTimeout / time.Millisecond))
	for _, k := range keys {
		var cmd [][]byte
		if kind == serverCodis {
			cmd = [][]byte{[]byte("SLOTSMGRTTAGONE"), []byte(host), []byte(port), []byte(timeout), k}
		} else {
			cmd = [][]byte{[]byte("MIGRATE"), []byte(host), []byte(port), k, []byte("0"), []byte(timeout)}
			if p.cfg.ProductAuth != "" {
				cmd = append(cmd, []byte("AUTH"), []byte(p.cfg.ProductAuth))
			}
		}
		reply, err := src.do(encodeCommand(cmd))
		if err != nil {
			return "ERR slot " + itoa(rt.id) + " is being moved and moving key '" + printable(k) + "' failed: " + err.Error()
		}
		if reply[0] == '-' {
			text := trimReply(reply)
			// BUSYKEY: the target already has the key, written there through
			// a proxy after an earlier move; its copy is the newer one.
			if len(text) >= 7 && text[:7] == "BUSYKEY" {
				continue
			}
			return "ERR slot " + itoa(rt.id) + " is being moved and moving key '" + printable(k) + "' from " +
				rt.from.addr + " to " + rt.backend.addr + " failed: " + text
		}
	}
	return ""
}

// semiAsync runs the SLOTSMGRT-EXEC-WRAPPER loop on a codis-server source.
func (p *Proxy) semiAsync(rt route, src *backendConn, raw []byte, hkey []byte, seed uint32, done func([]byte)) {
	args, _, err := newRequestReader(bytesReader(raw), p.limits).ReadRequest()
	if err != nil {
		rt.done()
		done(replyError("ERR " + err.Error()))
		return
	}
	wrapped := append([][]byte{[]byte("SLOTSMGRT-EXEC-WRAPPER"), hkey}, args...)
	data := encodeCommand(wrapped)
	deadline := time.Now().Add(p.cfg.LockedHold)
	for loop := 0; ; loop++ {
		reply, err := src.do(data)
		if err != nil {
			rt.done()
			done(replyError("ERR slot " + itoa(rt.id) + " is being moved: " + err.Error()))
			return
		}
		pr, _, perr := parseReply(reply)
		if perr != nil || pr.kind != '*' || len(pr.elems) != 2 {
			rt.done()
			if reply[0] == '-' {
				done(reply)
			} else {
				done(replyError("ERR unexpected SLOTSMGRT-EXEC-WRAPPER reply from " + rt.from.addr))
			}
			return
		}
		code, _, _ := parseReply(pr.elems[0])
		switch code.n {
		case 0: // not on the source (any more): the target serves it
			p.sendTarget(rt, raw, seed, done)
			return
		case 2: // the source ran it
			rt.done()
			done(append([]byte(nil), pr.elems[1]...))
			return
		case 1:
		default:
			rt.done()
			done(replyError("ERR unexpected SLOTSMGRT-EXEC-WRAPPER code " + itoa(int(code.n)) + " from " + rt.from.addr))
			return
		}
		// 1: the key is being migrated right now. The slot's ref is let go
		// while waiting: an Apply switching the slot waits for its refs,
		// which must not depend on how long the source takes (the watcher
		// reads no heartbeat while it applies, and the lease would run
		// out). This session's later requests still wait for this one.
		rt.done()
		if time.Now().After(deadline) {
			p.metrics.movingErrors.Inc()
			done(replyError(errMoving(rt.id)))
			return
		}
		wait := time.Duration(0)
		if loop >= 5 {
			wait = time.Duration(loop) * time.Millisecond
			if wait > 20*time.Millisecond {
				wait = 20 * time.Millisecond
			}
		}
		time.Sleep(wait)
		next, msg := p.router.acquire(rt.id, nil)
		if msg != "" {
			done(replyError(msg))
			return
		}
		if next.from == nil { // the move is over: the new owner serves it
			p.sendTarget(next, raw, seed, done)
			return
		}
		rt, src = next, next.from.pick(seed)
	}
}
