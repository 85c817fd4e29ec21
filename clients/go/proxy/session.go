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
// writer waits until done is set and writes reply, in the order requests
// were read.
type request struct {
	done  atomic.Bool
	reply []byte
	cmd   *command
	start time.Time // when the read that completed the request returned
	close bool      // end the session after this reply
	// For a request forwarded as is: its session, route and backend call.
	s  *session
	rt route
	cl call
	// Storage kept across uses of a pooled request: the frame, its argument
	// slices and the reply as the backend reader copies it.
	raw   []byte
	args  [][]byte
	rbuf  []byte
	reuse bool // nothing but the session holds r once its reply is written
	held  int  // bytes of r counted in its session's held total
	est   int  // of which the reply estimate charged when r was read
}

// finish completes r and wakes its session's writer.
func (r *request) finish(reply []byte) {
	s := r.s // once done is set the writer may recycle r
	r.complete(reply)
	s.wakeWriter()
}

// complete sets r's reply without waking the writer: a backend reader
// completing a run of replies wakes each session once for the run (see
// wakeList), instead of once per reply.
func (r *request) complete(reply []byte) {
	r.reply = reply
	if s := r.s; s != nil {
		// Replace the estimate charged at read time by the real size.
		s.held.Add(int64(len(reply) - r.est))
		r.held += len(reply) - r.est
		s.replyEst.Store(int64(len(reply)))
	}
	r.done.Store(true)
}

// requestPool recycles the requests of plain forwarded commands, with their
// buffers: at a deep pipeline a request, its frame and its reply were three
// allocations per command, and the GC they caused a fifth of the CPU.
var requestPool = sync.Pool{New: func() any { return new(request) }}

// maxPooledBuf keeps a big value's buffers out of the pool.
const maxPooledBuf = 16 << 10

func getRequest() *request {
	return requestPool.Get().(*request)
}

func putRequest(r *request) {
	raw, args, rbuf := r.raw[:0], r.args[:0], r.rbuf[:0]
	if cap(raw) > maxPooledBuf {
		raw = nil
	}
	if cap(rbuf) > maxPooledBuf {
		rbuf = nil
	}
	clear(args[:cap(args)]) // drop references into old frames
	if cap(args) > 64 {
		args = nil
	}
	*r = request{raw: raw, args: args, rbuf: rbuf}
	requestPool.Put(r)
}

// session is one client connection: this goroutine reads and dispatches
// requests; a writer goroutine sends replies in request order, flushing only
// when no further reply is ready.
type session struct {
	p     *Proxy
	nc    net.Conn
	id    uint32
	rr    *requestReader
	queue chan *request
	// wake (cap 1) tells the writer that a request completed; the writer
	// rechecks its head request, so a token may be stale or coalesced.
	wake chan struct{}
	// held counts the bytes of requests read and not yet answered plus
	// replies not yet written; the reader stops while it is at
	// MaxSessionBytes (see waitForRoom). A request not yet answered is
	// charged the size of the session's last reply (replyEst): a client
	// reads its pipeline faster than the backends answer, so counting
	// replies only once they arrive let thousands of large ones in. The
	// charge is at least minReplyEst, so that before the first reply (and
	// after small ones) MaxSessionBytes/minReplyEst requests at most are
	// unanswered.
	held     atomic.Int64
	replyEst atomic.Int64
	room     chan struct{} // cap 1: the writer made room for a waiting reader
	waiting  atomic.Bool
	authed   bool
	name     []byte
	tx       *txState
	keyBuf   []int
	cutOff   bool // ended for bad input: linger on close
	// dirty lists the backend connections written to since the last flush:
	// they are flushed once the client's buffered input is consumed (one
	// write per backend per client batch) and before the reader blocks.
	dirty []*backendConn
	// clock stamps each read from the client: the requests decoded from one
	// read share its time (one clock read per read, not per request).
	clock *readClock
}

// readClock is the client connection as the request reader sees it; at is
// when the last read that returned bytes returned.
type readClock struct {
	r  io.Reader
	at time.Time
}

func (c *readClock) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.at = time.Now()
	}
	return n, err
}

// waitForRoom blocks the reader while the session holds MaxSessionBytes or
// more: the client is then not read from (TCP pushes back) until replies
// have been written. It flushes the backend writes first: the replies that
// make room depend on them.
func (s *session) waitForRoom() {
	limit := int64(s.p.cfg.MaxSessionBytes)
	if s.held.Load() < limit {
		return
	}
	s.flushDirty()
	for {
		s.waiting.Store(true)
		if s.held.Load() < limit {
			break
		}
		<-s.room
	}
	s.waiting.Store(false)
}

// release is the writer's side of waitForRoom.
func (s *session) release(n int) {
	if left := s.held.Add(-int64(n)); s.waiting.Load() && left < int64(s.p.cfg.MaxSessionBytes) {
		select {
		case s.room <- struct{}{}:
		default:
		}
	}
}

func (s *session) wakeWriter() {
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already due
	}
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

// minReplyEst is the least a request not yet answered is charged against
// MaxSessionBytes (32 MiB: 8,192 unanswered requests).
const minReplyEst = 4 << 10

// drainIdle is how long a session may be silent during shutdown before it ends.
const drainIdle = 200 * time.Millisecond

func newSession(p *Proxy, nc net.Conn) *session {
	clock := &readClock{r: nc}
	return &session{
		p:      p,
		nc:     nc,
		clock:  clock,
		id:     sessionSeq.Add(1),
		rr:     newRequestReader(clock, p.limits),
		queue:  make(chan *request, p.cfg.MaxPipeline),
		wake:   make(chan struct{}, 1),
		room:   make(chan struct{}, 1),
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
		s.waitForRoom()
		r := getRequest()
		args, raw, err := s.rr.ReadRequestInto(r.raw, r.args)
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
			putRequest(r)
			continue
		}
		r.raw, r.args, r.s, r.start = raw, args, s, s.clock.at
		r.est = max(int(s.replyEst.Load()), minReplyEst)
		r.held = len(raw) + r.est
		s.held.Add(int64(r.held))
		s.dispatch(r, args, raw)
		closing := r.close // once queued, r may be recycled by the writer
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
		if closing {
			return
		}
	}
}

func (s *session) enqueueFinal(msg string) {
	s.cutOff = true
	r := &request{start: time.Now(), reply: replyError(msg), close: true, s: s}
	r.done.Store(true)
	r.held = len(r.reply)
	s.held.Add(int64(r.held))
	s.queue <- r
}

func (s *session) writeLoop(done chan struct{}) {
	defer close(done)
	bw := bufio.NewWriterSize(s.nc, 16<<10)
	m := s.p.metrics
	broken := false
	// now is read once per run of replies that are ready together, and
	// again after each wait or flush: a clock read per reply cost ≈ 4 % of
	// the proxy's CPU at -P 16.
	var now time.Time
	wt := s.p.cfg.WriteTimeout
	// The write deadline is armed to now + 1.5 × WriteTimeout and re-armed
	// only when less than WriteTimeout of it is left, so a blocked write
	// fails after WriteTimeout to 1.5 × WriteTimeout, and most flushes do
	// not touch the runtime's timers.
	var deadline time.Time
	arm := func() {
		if deadline.Sub(now) < wt {
			deadline = now.Add(wt + wt/2)
			_ = s.nc.SetWriteDeadline(deadline)
		}
	}
	for r := range s.queue {
		if !r.done.Load() {
			for !r.done.Load() {
				<-s.wake
			}
			now = time.Time{}
		}
		if now.IsZero() {
			now = time.Now()
		}
		m.latency.Observe(now.Sub(r.start).Seconds())
		s.release(r.held)
		if broken {
			continue
		}
		if len(r.reply) > bw.Available() { // this write flushes
			arm()
		}
		_, err := bw.Write(r.reply)
		closing := r.close
		if r.reuse {
			putRequest(r)
		}
		if err != nil {
			broken = true
			s.nc.Close() // stops the reader too
			continue
		}
		if closing || len(s.queue) == 0 {
			// Without a deadline a client that never reads would pin its
			// queued replies (up to MaxPipeline) forever.
			arm()
			err := bw.Flush()
			now = time.Time{}
			if err != nil {
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
	r.rt, r.reuse = rt, true
	r.cl = call{data: raw, replies: 1, req: r}
	b := rt.backend
	if c.readonly && len(rt.replicas) > 0 {
		b = rt.replicas[s.id%uint32(len(rt.replicas))] // sessions spread over the bucket
	}
	if bc := b.pick(s.id); bc.write(&r.cl) {
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

// backendComplete is backendDone for a reply, leaving the writer's wake-up
// to the backend reader (wakeList).
func (s *session) backendComplete(r *request, reply []byte) {
	r.rt.done()
	s.countReply(r, reply)
	r.complete(reply)
}

func (s *session) fail(r *request, msg string) {
	s.p.countErr(r.cmd)
	r.finish(replyError(msg))
}

// finishCounted finishes r and counts backend error replies.
func (s *session) finishCounted(r *request, reply []byte) {
	s.countReply(r, reply)
	r.finish(reply)
}

func (s *session) countReply(r *request, reply []byte) {
	if len(reply) > 0 && reply[0] == '-' {
		s.p.stats.redisErrors.Add(1)
		s.p.countErr(r.cmd)
	}
}

// wakeList collects the sessions whose requests a backend reader completed
// while more replies were already buffered; it wakes their writers once the
// buffer is drained, so a pipelined batch costs one wake-up, not one per
// reply.
type wakeList []*session

func (w *wakeList) add(s *session) {
	if n := len(*w); n > 0 && (*w)[n-1] == s {
		return
	}
	*w = append(*w, s)
}

func (w *wakeList) wakeAll() {
	for i, s := range *w {
		s.wakeWriter()
		(*w)[i] = nil
	}
	*w = (*w)[:0]
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
