package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// call is one unit written to a backend connection: the bytes of one or
// more commands and how many replies they produce. done receives the last
// reply (earlier ones are checked for errors by the caller's framing).
type call struct {
	data    []byte
	replies int // 1 unless a transaction is sent as one block
	done    func(reply []byte, err error)
	all     [][]byte // every reply, when replies > 1
	// req, when set, is the plain request this call is embedded in: it is
	// finished without a closure (the common path, one allocation fewer).
	req *request
}

func (cl *call) finish(reply []byte, err error) {
	if r := cl.req; r != nil {
		r.s.backendDone(r, reply, err)
		return
	}
	cl.done(reply, err)
}

// complete is finish for a reply read by the backend reader: a plain
// request's session is added to wl instead of being woken now.
func (cl *call) complete(reply []byte, wl *wakeList) {
	if r := cl.req; r != nil {
		s := r.s // once completed, r may be recycled
		s.backendComplete(r, reply)
		wl.add(s)
		return
	}
	cl.done(reply, nil)
}

// BackendError names the backend that failed a request.
type BackendError struct {
	Addr string
	Err  error
}

func (e *BackendError) Error() string {
	return fmt.Sprintf("backend %s: %v", e.Addr, e.Err)
}

// backendPool is the set of connections the proxy keeps to one server
// address, shared by every slot and session that uses that server.
type backendPool struct {
	addr  string
	conns []*backendConn
	kind  atomic.Int32 // serverUnknown, serverRedis, serverCodis
}

const (
	serverUnknown int32 = iota
	serverRedis
	serverCodis
)

func (p *backendPool) pick(seed uint32) *backendConn {
	return p.conns[seed%uint32(len(p.conns))]
}

func (p *backendPool) close() {
	for _, c := range p.conns {
		c.close()
	}
}

// backendConn is one pipelined TCP connection. Senders write their
// commands into its buffer themselves, under mu, and queue the call on
// pending in the same critical section, so replies match in FIFO order; a
// session flushes once per batch of client input (write + flush), which
// makes one write syscall carry a whole client pipeline. A reader goroutine
// matches replies to calls. While the server is unreachable, calls fail at
// once with an error naming it, and the connection redials with backoff.
type backendConn struct {
	pool    *backendPool
	cfg     *backendConfig
	quit    chan struct{}
	once    sync.Once
	downErr atomic.Pointer[error] // non-nil while the server is unreachable
	up      atomic.Bool
	// tried is closed once the first dial has finished (well or not), so
	// that calls made before it wait for it instead of failing. triedDone
	// and closed mirror tried and quit for write's fast path: a select on
	// both channels was ≈ 5 % of the proxy's CPU at -P 16.
	tried     chan struct{}
	triedDone atomic.Bool
	closed    atomic.Bool

	mu   sync.Mutex
	live *liveConn // nil while not connected
}

// liveConn is the state of one established connection.
type liveConn struct {
	nc      net.Conn
	bw      *bufio.Writer
	pending chan *call    // written, awaiting replies; closed when the connection ends
	kick    chan struct{} // cap 1: asks the flusher to flush
}

type backendConfig struct {
	password    string
	maxPending  int
	dialTimeout time.Duration
	log         *slog.Logger
	onConnect   func(p *backendPool, nc net.Conn, br *bufio.Reader) error // probe (kind, COMMAND)
	conns       *atomic.Int64                                             // open connection count
}

func newBackendPool(addr string, n int, cfg *backendConfig) *backendPool {
	p := &backendPool{addr: addr}
	for i := 0; i < n; i++ {
		c := &backendConn{pool: p, cfg: cfg, quit: make(chan struct{}), tried: make(chan struct{})}
		p.conns = append(p.conns, c)
		go c.run()
	}
	return p
}

func (c *backendConn) close() {
	c.once.Do(func() {
		c.closed.Store(true)
		close(c.quit)
	})
}

// markTried records that the first dial has finished.
func (c *backendConn) markTried() {
	c.triedDone.Store(true)
	close(c.tried)
}

var (
	errClosed   = errors.New("connection closed by the proxy (server no longer used)")
	errTooDeep  = errors.New("too many requests in flight on one connection")
	errNotReady = errors.New("not connected")
)

// write queues cl's bytes in the connection's buffer without flushing and
// reports whether it did; otherwise cl has already failed. The caller must
// flush (soon): until then the server has not seen the command.
func (c *backendConn) write(cl *call) bool {
	if !c.triedDone.Load() {
		select {
		case <-c.tried:
		case <-c.quit:
		}
	}
	if c.closed.Load() {
		cl.finish(nil, &BackendError{Addr: c.pool.addr, Err: errClosed})
		return false
	}
	c.mu.Lock()
	lc := c.live
	if lc == nil {
		c.mu.Unlock()
		err := errNotReady
		if e := c.downErr.Load(); e != nil {
			err = *e
		}
		cl.finish(nil, &BackendError{Addr: c.pool.addr, Err: err})
		return false
	}
	select {
	case lc.pending <- cl:
	default:
		c.mu.Unlock()
		cl.finish(nil, &BackendError{Addr: c.pool.addr, Err: errTooDeep})
		return false
	}
	if _, err := lc.bw.Write(cl.data); err != nil {
		lc.nc.Close() // the reader fails what is pending, cl included
	}
	c.mu.Unlock()
	return true
}

// flush asks the connection's flusher to send what write buffered. The
// flusher runs on its own goroutine, so writes from many sessions that
// arrive while it wakes up leave in one syscall (at -P 1 with 50 clients a
// flush per request in each session cost more than it saved).
func (c *backendConn) flush() {
	c.mu.Lock()
	lc := c.live
	c.mu.Unlock()
	if lc != nil {
		select {
		case lc.kick <- struct{}{}:
		default: // a flush is already due
		}
	}
}

// flusher flushes lc on each kick until stop closes.
func (c *backendConn) flusher(lc *liveConn, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-lc.kick:
		}
		// Sessions made ready by the same network poll write their
		// batches first, so that one write carries more of them.
		runtime.Gosched()
		c.mu.Lock()
		if lc.bw.Buffered() > 0 {
			if err := lc.bw.Flush(); err != nil {
				lc.nc.Close() // the reader fails what is pending
			}
		}
		c.mu.Unlock()
	}
}

// send writes and flushes cl. It never blocks for long: a down server fails
// it at once.
func (c *backendConn) send(cl *call) {
	if c.write(cl) {
		c.flush()
	}
}

// do sends data synchronously and returns its reply (control-path use).
func (c *backendConn) do(data []byte) ([]byte, error) {
	ch := make(chan struct{})
	var reply []byte
	var err error
	c.send(&call{data: data, replies: 1, done: func(r []byte, e error) { reply, err = r, e; close(ch) }})
	<-ch
	return reply, err
}

func (c *backendConn) run() {
	backoff := 50 * time.Millisecond
	first := true
	for {
		select {
		case <-c.quit:
			if first {
				c.markTried()
			}
			return
		default:
		}
		nc, br, err := c.dial()
		if err != nil {
			c.markDown(err)
			if first {
				c.markTried()
				first = false
			}
			c.cfg.log.Warn("backend unreachable", "addr", c.pool.addr, "err", err, "retry_in", backoff)
			select {
			case <-c.quit:
				return
			case <-time.After(backoff):
			}
			if backoff *= 2; backoff > 2*time.Second {
				backoff = 2 * time.Second
			}
			continue
		}
		backoff = 50 * time.Millisecond
		lc := &liveConn{nc: nc, bw: bufio.NewWriterSize(nc, 64<<10), pending: make(chan *call, c.cfg.maxPending), kick: make(chan struct{}, 1)}
		c.mu.Lock()
		c.live = lc
		c.downErr.Store(nil)
		c.mu.Unlock()
		if first {
			c.markTried()
			first = false
		}
		c.up.Store(true)
		c.cfg.conns.Add(1)
		err = c.serve(lc, br)
		c.cfg.conns.Add(-1)
		c.up.Store(false)
		c.cfg.log.Warn("backend connection lost", "addr", c.pool.addr, "err", err)
	}
}

func (c *backendConn) markDown(err error) {
	e := err
	c.downErr.Store(&e)
}

// serve reads replies until the connection fails or the pool is closed,
// then fails every call still unanswered, naming the server.
func (c *backendConn) serve(lc *liveConn, br *bufio.Reader) error {
	stop := make(chan struct{})
	defer close(stop)
	go c.flusher(lc, stop)
	go func() {
		select {
		case <-c.quit:
			lc.nc.Close()
			c.endLive(lc, errClosed)
		case <-stop:
		}
	}()
	rr := replyReader{br: br}
	var err error
	var wl wakeList
	defer wl.wakeAll()
	for cl := range lc.pending { // ends once endLive closed it and it is drained
		if err != nil {
			cl.finish(nil, &BackendError{Addr: c.pool.addr, Err: err})
			continue
		}
		var reply []byte
		if r := cl.req; r != nil && cl.replies == 1 {
			// Into the pooled request's own buffer: no allocation.
			if reply, err = rr.appendReply(r.rbuf[:0], 0); err == nil {
				r.rbuf = reply
			}
		} else {
			for i := 0; i < cl.replies && err == nil; i++ {
				if reply, err = rr.ReadReply(); err == nil && cl.replies > 1 {
					cl.all = append(cl.all, reply)
				}
			}
		}
		if err != nil {
			wl.wakeAll()
			cl.finish(nil, &BackendError{Addr: c.pool.addr, Err: err})
			lc.nc.Close()
			c.endLive(lc, err)
			continue
		}
		cl.complete(reply, &wl)
		if br.Buffered() == 0 || len(wl) >= 64 {
			wl.wakeAll() // the next read may block
		}
	}
	if err == nil {
		err = errClosed
	}
	return err
}

// endLive retires lc (once): new calls fail with err, and the reader fails
// what is still pending.
func (c *backendConn) endLive(lc *liveConn, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live == lc {
		c.live = nil
		c.markDown(err)
		close(lc.pending)
	}
}

func (c *backendConn) dial() (net.Conn, *bufio.Reader, error) {
	nc, err := net.DialTimeout("tcp", c.pool.addr, c.cfg.dialTimeout)
	if err != nil {
		return nil, nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetKeepAlive(true)
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if c.cfg.password != "" {
		if _, err := nc.Write(encodeStrings("AUTH", c.cfg.password)); err != nil {
			nc.Close()
			return nil, nil, err
		}
		rr := replyReader{br: br}
		r, err := rr.ReadReply()
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		if r[0] == '-' {
			nc.Close()
			return nil, nil, fmt.Errorf("AUTH refused: %s", trimReply(r))
		}
	}
	if c.cfg.onConnect != nil {
		if err := c.cfg.onConnect(c.pool, nc, br); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, br, nil
}

func trimReply(r []byte) string {
	if i := indexCRLF(r); i > 0 {
		return string(r[1:i])
	}
	return string(r)
}
