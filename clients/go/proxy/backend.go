package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
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

// backendConn is one pipelined TCP connection: a writer goroutine batches
// calls (flushing when nothing else is queued) and a reader goroutine
// matches replies to calls in FIFO order. While the server is unreachable,
// calls fail at once with an error naming it, and the connection redials
// with backoff.
type backendConn struct {
	pool    *backendPool
	cfg     *backendConfig
	in      chan *call
	quit    chan struct{}
	once    sync.Once
	downErr atomic.Pointer[error] // non-nil while the server is unreachable
	up      atomic.Bool
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
		c := &backendConn{pool: p, cfg: cfg, in: make(chan *call, 1024), quit: make(chan struct{})}
		p.conns = append(p.conns, c)
		go c.run()
	}
	return p
}

func (c *backendConn) close() { c.once.Do(func() { close(c.quit) }) }

var errClosed = errors.New("connection closed by the proxy (server no longer used)")

// send queues cl. It never blocks for long: a down server fails it at once.
func (c *backendConn) send(cl *call) {
	if e := c.downErr.Load(); e != nil {
		cl.done(nil, &BackendError{Addr: c.pool.addr, Err: *e})
		return
	}
	select {
	case c.in <- cl:
	case <-c.quit:
		cl.done(nil, &BackendError{Addr: c.pool.addr, Err: errClosed})
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
	for {
		select {
		case <-c.quit:
			c.failQueued(errClosed)
			return
		default:
		}
		nc, br, err := c.dial()
		if err != nil {
			c.markDown(err)
			c.cfg.log.Warn("backend unreachable", "addr", c.pool.addr, "err", err, "retry_in", backoff)
			if !c.sleepFailing(backoff, err) {
				return
			}
			if backoff *= 2; backoff > 2*time.Second {
				backoff = 2 * time.Second
			}
			continue
		}
		backoff = 50 * time.Millisecond
		c.downErr.Store(nil)
		c.up.Store(true)
		c.cfg.conns.Add(1)
		err = c.serve(nc, br)
		c.cfg.conns.Add(-1)
		c.up.Store(false)
		c.markDown(err)
		c.cfg.log.Warn("backend connection lost", "addr", c.pool.addr, "err", err)
	}
}

func (c *backendConn) markDown(err error) {
	e := err
	c.downErr.Store(&e)
}

// sleepFailing waits d while failing every queued call with err.
func (c *backendConn) sleepFailing(d time.Duration, err error) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			c.failQueued(errClosed)
			return false
		case <-t.C:
			return true
		case cl := <-c.in:
			cl.done(nil, &BackendError{Addr: c.pool.addr, Err: err})
		}
	}
}

func (c *backendConn) failQueued(err error) {
	for {
		select {
		case cl := <-c.in:
			cl.done(nil, &BackendError{Addr: c.pool.addr, Err: err})
		default:
			return
		}
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

// serve runs the writer here and the reader in a goroutine until either fails.
func (c *backendConn) serve(nc net.Conn, br *bufio.Reader) error {
	pending := make(chan *call, c.cfg.maxPending)
	dead := make(chan struct{})
	var readErr error
	go func() {
		defer close(dead)
		rr := replyReader{br: br}
		for cl := range pending {
			var reply []byte
			var err error
			for i := 0; i < cl.replies; i++ {
				reply, err = rr.ReadReply()
				if err != nil {
					break
				}
				if cl.replies > 1 {
					cl.all = append(cl.all, reply)
				}
			}
			if err != nil {
				readErr = err
				cl.done(nil, &BackendError{Addr: c.pool.addr, Err: err})
				nc.Close()
				return
			}
			cl.done(reply, nil)
		}
	}()

	bw := bufio.NewWriterSize(nc, 64<<10)
	var werr error
loop:
	for {
		var cl *call
		select {
		case cl = <-c.in:
		case <-dead:
			werr = readErr
			break loop
		case <-c.quit:
			werr = errClosed
			break loop
		}
		select {
		case pending <- cl:
		case <-dead:
			cl.done(nil, &BackendError{Addr: c.pool.addr, Err: readErr})
			werr = readErr
			break loop
		}
		if _, err := bw.Write(cl.data); err != nil {
			werr = err
			break
		}
		if len(c.in) == 0 {
			if err := bw.Flush(); err != nil {
				werr = err
				break
			}
		}
	}
	nc.Close()
	close(pending)
	<-dead
	if werr == nil {
		werr = errors.New("connection closed")
	}
	// Calls written but unanswered: fail them, naming the server.
	for cl := range pending {
		cl.done(nil, &BackendError{Addr: c.pool.addr, Err: werr})
	}
	return werr
}

func trimReply(r []byte) string {
	if i := indexCRLF(r); i > 0 {
		return string(r[1:i])
	}
	return string(r)
}
