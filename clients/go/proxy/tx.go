package proxy

import (
	"bufio"
	"net"
	"time"

	topom "github.com/topom/topom/clients/go"
)

// txState is a session's MULTI / WATCH state. The queued commands are held
// by the proxy and sent at EXEC as one block (MULTI ... EXEC) to the slot's
// master, so the transaction needs no connection of its own. WATCH does: it
// opens a connection to the slot's master reserved to this session until
// EXEC, DISCARD or UNWATCH.
type txState struct {
	multi  bool
	dirty  bool // a queued command was refused: EXEC aborts
	queued [][]byte
	keys   [][]byte
	slot   int // -1 until a key names it
	watch  *watchConn
}

type watchConn struct {
	nc   net.Conn
	br   *bufio.Reader
	addr string
	slot int
}

func (t *txState) closeWatch() {
	if t.watch != nil {
		t.watch.nc.Close()
		t.watch = nil
	}
}

func (w *watchConn) roundTrip(data []byte, replies int) ([][]byte, error) {
	_ = w.nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := w.nc.Write(data); err != nil {
		return nil, err
	}
	rr := replyReader{br: w.br}
	out := make([][]byte, 0, replies)
	for i := 0; i < replies; i++ {
		r, err := rr.ReadReply()
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *session) txCommand(r *request, c *command, args [][]byte, raw []byte) {
	switch c.name {
	case "multi":
		if s.tx != nil && s.tx.multi {
			s.fail(r, "ERR MULTI calls can not be nested")
			return
		}
		if s.tx == nil {
			s.tx = &txState{slot: -1}
		}
		s.tx.multi = true
		r.finish(replyOK)
	case "discard":
		if s.tx == nil || !s.tx.multi {
			s.fail(r, "ERR DISCARD without MULTI")
			return
		}
		s.tx.closeWatch()
		s.tx = nil
		r.finish(replyOK)
	case "unwatch":
		if s.tx != nil {
			s.tx.closeWatch()
			if !s.tx.multi {
				s.tx = nil
			}
		}
		r.finish(replyOK)
	case "watch":
		if s.tx != nil && s.tx.multi {
			s.fail(r, "ERR WATCH inside MULTI is not allowed")
			return
		}
		s.watch(r, c, args)
	case "exec":
		if s.tx == nil || !s.tx.multi {
			s.fail(r, "ERR EXEC without MULTI")
			return
		}
		tx := s.tx
		s.tx = nil
		s.exec(r, tx)
	}
}

// queueTx checks and holds one command inside MULTI.
func (s *session) queueTx(r *request, c *command, args [][]byte, raw []byte) {
	tx := s.tx
	refuse := func(msg string) {
		tx.dirty = true
		s.fail(r, msg)
	}
	switch c.kind {
	case kindRefused:
		refuse("ERR " + c.refusal)
		return
	case kindLocal:
		refuse("ERR " + upper(c.name) + " inside MULTI is not supported by the proxy")
		return
	}
	slot, msg := s.slotOf(c, args)
	if msg != "" {
		refuse(msg)
		return
	}
	if tx.slot >= 0 && tx.slot != slot {
		refuse(txCrossSlot(tx.slot, slot))
		return
	}
	tx.slot = slot
	tx.queued = append(tx.queued, raw)
	tx.keys = append(tx.keys, s.keysOf(c, args)...)
	r.finish([]byte("+QUEUED\r\n"))
}

func txCrossSlot(a, b int) string {
	return "CROSSSLOT the keys of this transaction map to different slots (" + itoa(a) + " and " + itoa(b) +
		"); the proxy runs MULTI/EXEC and WATCH only when every key shares one slot: use a {hash tag}"
}

func (s *session) watch(r *request, c *command, args [][]byte) {
	slot, msg := s.slotOf(c, args)
	if msg != "" {
		s.fail(r, msg)
		return
	}
	if s.tx != nil && s.tx.watch != nil && s.tx.watch.slot != slot {
		s.fail(r, txCrossSlot(s.tx.watch.slot, slot))
		return
	}
	rt, emsg := s.p.router.acquire(slot, s.flushDirty)
	if emsg != "" {
		s.fail(r, emsg)
		return
	}
	defer rt.done()
	keys := s.keysOf(c, args)
	if rt.from != nil {
		src := rt.from.pick(s.id)
		if m := s.p.moveKeys(rt, src, s.p.serverKind(rt.from, src), keys); m != "" {
			s.fail(r, m)
			return
		}
	}
	if s.tx == nil {
		s.tx = &txState{slot: -1}
	}
	if s.tx.watch == nil {
		w, err := s.p.dialWatch(rt.backend.addr)
		if err != nil {
			s.fail(r, "ERR WATCH: "+err.Error())
			return
		}
		w.slot = slot
		s.tx.watch = w
	}
	reps, err := s.tx.watch.roundTrip(encodeCommand(args), 1)
	if err != nil {
		s.tx.closeWatch()
		s.fail(r, "ERR WATCH: backend "+rt.backend.addr+": "+err.Error())
		return
	}
	s.tx.slot = slot
	r.finish(reps[0])
}

func (p *Proxy) dialWatch(addr string) (*watchConn, error) {
	nc, err := net.DialTimeout("tcp", addr, p.backendCfg.dialTimeout)
	if err != nil {
		return nil, &BackendError{Addr: addr, Err: err}
	}
	w := &watchConn{nc: nc, br: bufio.NewReader(nc), addr: addr}
	if p.cfg.ProductAuth != "" {
		reps, err := w.roundTrip(encodeStrings("AUTH", p.cfg.ProductAuth), 1)
		if err != nil || reps[0][0] == '-' {
			nc.Close()
			return nil, &BackendError{Addr: addr, Err: errAuth}
		}
	}
	return w, nil
}

var errAuth = &ProtocolError{msg: "AUTH refused"}

var nullArray = []byte("*-1\r\n")

// exec sends MULTI, the queued commands and EXEC as one block.
func (s *session) exec(r *request, tx *txState) {
	defer tx.closeWatch()
	if tx.dirty {
		s.fail(r, "EXECABORT Transaction discarded because of previous errors.")
		return
	}
	if len(tx.queued) == 0 && tx.watch == nil {
		r.finish([]byte("*0\r\n"))
		return
	}
	slot := tx.slot
	if tx.watch != nil && slot != tx.watch.slot && len(tx.queued) > 0 {
		s.fail(r, txCrossSlot(tx.watch.slot, slot))
		return
	}
	if slot < 0 {
		r.finish([]byte("*0\r\n"))
		return
	}
	rt, msg := s.p.router.acquire(slot, s.flushDirty)
	if msg != "" {
		s.fail(r, msg)
		return
	}
	if rt.from != nil {
		if tx.watch != nil {
			// The slot started moving since WATCH: abort as if a watched key changed.
			rt.done()
			r.finish(nullArray)
			return
		}
		src := rt.from.pick(s.id)
		if m := s.p.moveKeys(rt, src, s.p.serverKind(rt.from, src), tx.keys); m != "" {
			rt.done()
			s.fail(r, m)
			return
		}
	}
	block := append([]byte(nil), encodeStrings("MULTI")...)
	for _, q := range tx.queued {
		block = append(block, q...)
	}
	block = append(block, encodeStrings("EXEC")...)
	n := len(tx.queued) + 2
	if tx.watch != nil {
		defer rt.done()
		if tx.watch.addr != rt.backend.addr {
			r.finish(nullArray) // the slot changed master since WATCH
			return
		}
		reps, err := tx.watch.roundTrip(block, n)
		if err != nil {
			s.fail(r, "ERR EXEC: backend "+rt.backend.addr+": "+err.Error())
			return
		}
		s.finishCounted(r, reps[n-1])
		return
	}
	rt.backend.pick(s.id).send(&call{data: block, replies: n, done: func(reply []byte, err error) {
		rt.done()
		if err != nil {
			s.fail(r, "ERR "+err.Error())
			return
		}
		s.finishCounted(r, reply)
	}})
}

var _ = topom.SlotOf
