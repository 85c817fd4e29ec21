package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	topom "github.com/topom/topom/clients/go"
)

// request is one client command on its way through the proxy. The session
// writer waits on wg and writes reply, in the order requests were read.
type request struct {
	wg    sync.WaitGroup
	reply []byte
	cmd   *command
	start time.Time
	close bool // end the session after this reply
	// For a request forwarded as is: its session, route and backend call.
	s  *session
	rt route
	cl call
}

func (r *request) finish(reply []byte) {
	r.reply = reply
	r.wg.Done()
}

// session is one client connection: this goroutine reads and dispatches
// requests; a writer goroutine sends replies in request order, flushing only
// when no further reply is ready.
type session struct {
	p      *Proxy
	nc     net.Conn
	id     uint32
	rr     *requestReader
	queue  chan *request
	authed bool
	name   []byte
	tx     *txState
	keyBuf []int
	cutOff bool // ended for bad input: linger on close
	// dirty lists the backend connections written to since the last flush:
	// they are flushed once the client's buffered input is consumed (one
	// write per backend per client batch) and before the reader blocks.
	dirty []*backendConn
}

func (s *session) markDirty(c *backendConn) {
	for _, d := range s.dirty {
		if d == c {
			return
		}
	}
	s.dirty = append(s.dirty, c)
}

func (s *session) flushDirty() {
	for i, c := range s.dirty {
		c.flush()
		s.dirty[i] = nil
	}
	s.dirty = s.dirty[:0]
}

var sessionSeq atomic.Uint32

// drainIdle is how long a session may be silent during shutdown before it ends.
const drainIdle = 200 * time.Millisecond

func newSession(p *Proxy, nc net.Conn) *session {
	return &session{
		p:      p,
		nc:     nc,
		id:     sessionSeq.Add(1),
		rr:     newRequestReader(nc, p.limits),
		queue:  make(chan *request, p.cfg.MaxPipeline),
		authed: p.cfg.SessionAuth == "",
	}
}

func (s *session) serve() {
	m := s.p.metrics
	m.sessions.Inc()
	m.sessionsTotal.Inc()
	s.p.stats.sessionsTotal.Add(1)
	s.p.stats.sessionsAlive.Add(1)
	defer func() {
		m.sessions.Dec()
		s.p.stats.sessionsAlive.Add(-1)
	}()
	writerDone := make(chan struct{})
	go s.writeLoop(writerDone)
	s.readLoop()
	close(s.queue)
	<-writerDone
	if s.tx != nil {
		s.tx.closeWatch()
	}
	if s.cutOff {
		s.lingerClose()
	}
	s.nc.Close()
}

// lingerClose ends a session cut off for bad input so that the client reads
// every reply and the error before EOF: closing a socket with unread input
// makes the kernel send a reset, which discards replies not yet read. It
// half-closes and throws away what the client still sends, bounded in time
// and bytes.
func (s *session) lingerClose() {
	tc, ok := s.nc.(*net.TCPConn)
	if !ok {
		return
	}
	_ = tc.CloseWrite()
	_ = tc.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = io.CopyN(io.Discard, tc, 256<<20)
}

func (s *session) readLoop() {
	defer s.flushDirty() // the writer waits for these replies
	for {
		if s.p.draining.Load() {
			// Shutting down: serve what the client keeps sending, end once
			// it has been quiet for drainIdle.
			s.cutOff = true
			_ = s.nc.SetReadDeadline(time.Now().Add(drainIdle))
		}
		args, raw, err := s.rr.ReadRequest()
		if err != nil {
			var pe *ProtocolError
			if errors.As(err, &pe) {
				s.p.metrics.protocolErrors.Inc()
				s.p.log.Info("session ended: protocol error", "remote", s.nc.RemoteAddr().String(), "err", err)
				s.enqueueFinal("ERR " + pe.Error())
			} else if err != io.EOF && !errors.Is(err, net.ErrClosed) {
				s.p.log.Debug("session read", "remote", s.nc.RemoteAddr().String(), "err", err)
			}
			return
		}
		if args == nil {
			continue
		}
		r := &request{start: time.Now()}
		r.wg.Add(1)
		s.dispatch(r, args, raw)
		select {
		case s.queue <- r:
		default:
			// MaxPipeline replies wait to be written: the client is not
			// read from (TCP pushes back) until it reads.
			s.flushDirty()
			s.queue <- r
		}
		if s.rr.Buffered() == 0 {
			s.flushDirty()
		}
		if r.close {
			return
		}
	}
}

func (s *session) enqueueFinal(msg string) {
	s.cutOff = true
	r := &request{start: time.Now(), reply: replyError(msg), close: true}
	s.queue <- r
}

func (s *session) writeLoop(done chan struct{}) {
	defer close(done)
	bw := bufio.NewWriterSize(s.nc, 16<<10)
	m := s.p.metrics
	broken := false
	for r := range s.queue {
		r.wg.Wait()
		m.latency.Observe(time.Since(r.start).Seconds())
		if broken {
			continue
		}
		if len(r.reply) > bw.Available() { // this write flushes
			_ = s.nc.SetWriteDeadline(time.Now().Add(s.p.cfg.WriteTimeout))
		}
		if _, err := bw.Write(r.reply); err != nil {
			broken = true
			s.nc.Close() // stops the reader too
			continue
		}
		if r.close || len(s.queue) == 0 {
			// Without a deadline a client that never reads would pin its
			// queued replies (up to MaxPipeline) forever.
			_ = s.nc.SetWriteDeadline(time.Now().Add(s.p.cfg.WriteTimeout))
			if err := bw.Flush(); err != nil {
				broken = true
				s.nc.Close()
				continue
			}
		}
	}
	_ = bw.Flush()
}

// dispatch decides how r is served and starts it; r.finish is called
// exactly once, now or when the backends answer.
func (s *session) dispatch(r *request, args [][]byte, raw []byte) {
	tbl := s.p.commands.Load()
	c := tbl.lookup(args)
	if c == nil {
		r.cmd = unknownCommand
		s.fail(r, "ERR unknown command '"+printable(args[0])+"' (the proxy routes only commands its backends list in COMMAND)")
		return
	}
	r.cmd = c
	s.p.count(c)
	if !s.authed && c.name != "auth" && c.name != "hello" && c.name != "quit" {
		s.fail(r, "NOAUTH Authentication required.")
		return
	}
	if s.tx != nil && s.tx.multi && c.kind != kindTx {
		s.queueTx(r, c, args, raw)
		return
	}
	switch c.kind {
	case kindLocal:
		s.local(r, c, args)
	case kindRefused:
		s.fail(r, "ERR "+c.refusal)
	case kindTx:
		s.txCommand(r, c, args, raw)
	case kindSplit:
		s.split(r, c, args, raw)
	default:
		if (c.name == "xread" || c.name == "xreadgroup") && hasWord(args, "BLOCK") {
			s.fail(r, "ERR "+upper(c.name)+" with BLOCK is not supported by the proxy: blocking commands would stall a backend connection other clients share")
			return
		}
		slot, msg := s.slotOf(c, args)
		if msg != "" {
			s.fail(r, msg)
			return
		}
		s.forwardRequest(r, slot, c, args, raw)
	}
}

// forwardRequest is forward for one plain request, without closures.
func (s *session) forwardRequest(r *request, slot int, c *command, args [][]byte, raw []byte) {
	rt, msg := s.p.router.acquire(slot, s.flushDirty)
	if msg != "" {
		s.finishCounted(r, replyError(msg))
		return
	}
	if rt.from != nil {
		s.flushDirty() // the migration path waits on backends
		s.p.forwardMigrating(rt, raw, s.keysOf(c, args), s.id, func(reply []byte) { s.finishCounted(r, reply) })
		return
	}
	r.s, r.rt = s, rt
	r.cl = call{data: raw, replies: 1, req: r}
	if bc := rt.backend.pick(s.id); bc.write(&r.cl) {
		s.markDirty(bc)
	}
}

// backendDone completes a request sent by forwardRequest.
func (s *session) backendDone(r *request, reply []byte, err error) {
	r.rt.done()
	if err != nil {
		s.p.metrics.backendErrors.Inc()
		reply = replyError("ERR " + err.Error())
	}
	s.finishCounted(r, reply)
}

func (s *session) fail(r *request, msg string) {
	s.p.countErr(r.cmd)
	r.finish(replyError(msg))
}

// finishCounted finishes r and counts backend error replies.
func (s *session) finishCounted(r *request, reply []byte) {
	if len(reply) > 0 && reply[0] == '-' {
		s.p.stats.redisErrors.Add(1)
		s.p.countErr(r.cmd)
	}
	r.finish(reply)
}

// slotOf returns the one slot all keys of a command map to.
func (s *session) slotOf(c *command, args [][]byte) (int, string) {
	s.keyBuf = c.keys(args, s.keyBuf[:0])
	if len(s.keyBuf) == 0 {
		return 0, "ERR wrong number of arguments for '" + c.name + "' command (or no key to route by)"
	}
	slot := topom.SlotOf(args[s.keyBuf[0]])
	for _, i := range s.keyBuf[1:] {
		if o := topom.SlotOf(args[i]); o != slot {
			return 0, crossSlot(c.name, slot, o)
		}
	}
	return slot, ""
}

func (s *session) keysOf(c *command, args [][]byte) [][]byte {
	keys := make([][]byte, 0, len(s.keyBuf))
	for _, i := range s.keyBuf {
		keys = append(keys, args[i])
	}
	return keys
}

func crossSlot(name string, a, b int) string {
	return "CROSSSLOT keys of '" + name + "' map to different slots (" + itoa(a) + " and " + itoa(b) +
		"); the proxy serves it only when every key shares one slot: use a {hash tag}"
}

// forward sends raw to the slot's backend, or follows the migration
// contract when the slot is migrating, and calls done with the reply.
func (s *session) forward(slot int, raw []byte, keys [][]byte, done func([]byte)) {
	rt, msg := s.p.router.acquire(slot, s.flushDirty)
	if msg != "" {
		done(replyError(msg))
		return
	}
	if rt.from != nil {
		s.flushDirty() // the migration path waits on backends
		s.p.forwardMigrating(rt, raw, keys, s.id, done)
		return
	}
	c := rt.backend.pick(s.id)
	if c.write(&call{data: raw, replies: 1, done: func(reply []byte, err error) {
		rt.done()
		if err != nil {
			s.p.metrics.backendErrors.Inc()
			done(replyError("ERR " + err.Error()))
			return
		}
		done(reply)
	}}) {
		s.markDirty(c)
	}
}
