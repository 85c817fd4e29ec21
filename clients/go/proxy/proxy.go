// Package proxy is the data path of topom-proxy: client sessions speaking
// RESP2, pipelined backend connections shared per server, slot routing
// with a per-slot barrier (it implements topom.Applier), multi-key
// splitting, transactions on one slot, and the migration contract of
// topom.v1.ForwardMethod. cmd/topom-proxy wires it to a SlotWatcher; its
// end-to-end tests (cmd/topom-proxy/*_test.go) run it against real topom
// and redis-server processes.
package proxy

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	topom "github.com/topom/topom/clients/go"
)

// Config holds the data-path settings. Zero values take the defaults.
type Config struct {
	ProductAuth     string        // password sent to backends (AUTH)
	SessionAuth     string        // password clients must send (AUTH); "" = none
	BackendConns    int           // connections per backend server (default 2)
	MaxPipeline     int           // unanswered requests per session before the proxy stops reading from it (default 10000)
	MaxSessionBytes int           // request and reply bytes one session may hold before the proxy stops reading from it (default 32 MiB)
	ReadReplicas    bool          // send read-only commands to the slot's nearest replicas (topom's replica groups), not the master
	MaxRequestBytes int           // one request frame (default 64 MiB)
	MaxArgs         int           // arguments of one request (default 1<<20)
	LockedHold      time.Duration // how long a locked slot holds a request (default 5s)
	MigrateTimeout  time.Duration // MIGRATE / SLOTSMGRTTAGONE timeout (default 3s)
	DrainGrace      time.Duration // Shutdown waits this long for sessions (default 10s)
	WriteTimeout    time.Duration // a client that reads none of its replies for this long (up to 1.5×) is dropped (default 30s)
	Version         string
	Logger          *slog.Logger
}

func (c *Config) defaults() {
	if c.BackendConns <= 0 {
		c.BackendConns = 2
	}
	if c.MaxPipeline <= 0 {
		c.MaxPipeline = 10000
	}
	if c.MaxSessionBytes <= 0 {
		c.MaxSessionBytes = 32 << 20
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = 64 << 20
	}
	if c.MaxArgs <= 0 {
		c.MaxArgs = 1 << 20
	}
	if c.LockedHold <= 0 {
		c.LockedHold = 5 * time.Second
	}
	if c.MigrateTimeout <= 0 {
		c.MigrateTimeout = 3 * time.Second
	}
	if c.DrainGrace <= 0 {
		c.DrainGrace = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Proxy serves clients on listeners given to Serve.
type Proxy struct {
	cfg        Config
	log        *slog.Logger
	limits     Limits
	router     *router
	commands   atomic.Pointer[commandTable]
	learned    atomic.Bool
	backendCfg *backendConfig
	metrics    *metrics
	stats      stats
	qps        qps
	started    time.Time

	backendConns atomic.Int64
	draining     atomic.Bool
	mu           sync.Mutex
	listeners    []net.Listener
	sessions     map[*session]struct{}
	sessionsWG   sync.WaitGroup
}

type stats struct {
	ops, fails, redisErrors      atomic.Int64
	sessionsTotal, sessionsAlive atomic.Int64
}

// New makes a proxy; it serves nothing until a table is applied.
func New(cfg Config) *Proxy {
	cfg.defaults()
	p := &Proxy{
		cfg:      cfg,
		log:      cfg.Logger,
		limits:   Limits{MaxRequestBytes: cfg.MaxRequestBytes, MaxArgs: cfg.MaxArgs},
		started:  time.Now(),
		sessions: map[*session]struct{}{},
	}
	p.metrics = newMetrics(p)
	p.commands.Store(staticTable())
	p.backendCfg = &backendConfig{
		password:    cfg.ProductAuth,
		maxPending:  20480,
		dialTimeout: time.Second,
		log:         cfg.Logger,
		onConnect:   p.probe,
		conns:       &p.backendConns,
	}
	p.router = newRouter(p)
	return p
}

// Applier is the hook the topom SlotWatcher calls.
func (p *Proxy) Applier() topom.Applier { return p.router }

// SetLeaseCheck makes every request check live (the watcher's LeaseLive)
// besides the fence flag: the fence comes from a timer that can fire late,
// e.g. right after the process was stopped and continued. Call it before
// serving.
func (p *Proxy) SetLeaseCheck(live func() bool) { p.router.leaseLive = live }

// Ready reports whether the proxy serves: it has a table and is not fenced.
func (p *Proxy) Ready() bool {
	return p.router.synced.Load() && !p.router.fenced.Load() && (p.router.leaseLive == nil || p.router.leaseLive())
}

// Fenced reports whether the lease ran out.
func (p *Proxy) Fenced() bool { return p.router.fenced.Load() }

// Revision is the applied table revision (0 before the first).
func (p *Proxy) Revision() uint64 { return p.router.revision.Load() }

// probe runs once per new backend connection: it tells codis-server from
// plain Redis (codis-server answers SLOTSINFO) and, on the first server,
// learns the command table from COMMAND.
func (p *Proxy) probe(pool *backendPool, nc net.Conn, br *bufio.Reader) error {
	rr := replyReader{br: br}
	if pool.kind.Load() == serverUnknown {
		if _, err := nc.Write(encodeStrings("SLOTSINFO", "0", "1")); err != nil {
			return err
		}
		r, err := rr.ReadReply()
		if err != nil {
			return err
		}
		if r[0] == '*' {
			pool.kind.Store(serverCodis)
		} else {
			pool.kind.Store(serverRedis)
		}
	}
	if !p.learned.Load() {
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(encodeStrings("COMMAND")); err != nil {
			return err
		}
		r, err := rr.ReadReply()
		if err != nil {
			return err
		}
		if r[0] == '*' && p.learned.CompareAndSwap(false, true) {
			if t, err := learnCommands(r); err == nil {
				p.commands.Store(t)
				p.log.Info("learned commands from backend", "addr", pool.addr, "count", len(t.cmds))
			} else {
				p.log.Warn("COMMAND reply not understood; using the static table", "addr", pool.addr, "err", err)
			}
		}
	}
	return nil
}

// Serve accepts client connections on l until Shutdown.
func (p *Proxy) Serve(l net.Listener) error {
	p.mu.Lock()
	if p.draining.Load() {
		p.mu.Unlock()
		l.Close()
		return errors.New("proxy: shutting down")
	}
	p.listeners = append(p.listeners, l)
	p.mu.Unlock()
	backoff := 5 * time.Millisecond
	for {
		nc, err := l.Accept()
		if err != nil {
			if p.draining.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(backoff)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			p.log.Warn("accept", "err", err)
			time.Sleep(backoff) // e.g. EMFILE: do not spin
			if backoff < time.Second {
				backoff *= 2
			}
			continue
		}
		backoff = 5 * time.Millisecond
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		s := newSession(p, nc)
		p.mu.Lock()
		p.sessions[s] = struct{}{}
		p.sessionsWG.Add(1)
		p.mu.Unlock()
		go func() {
			defer func() {
				p.mu.Lock()
				delete(p.sessions, s)
				p.mu.Unlock()
				p.sessionsWG.Done()
			}()
			s.serve()
		}()
	}
}

// Shutdown stops accepting, lets sessions finish what they have sent (up
// to the grace period or ctx), then closes the rest.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.draining.Store(true)
	p.mu.Lock()
	for _, l := range p.listeners {
		l.Close()
	}
	// Wake idle readers: sessions end after replying to what they have read.
	for s := range p.sessions {
		if tc, ok := s.nc.(*net.TCPConn); ok {
			_ = tc.SetReadDeadline(time.Now().Add(drainIdle))
		}
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.sessionsWG.Wait(); close(done) }()
	t := time.NewTimer(p.cfg.DrainGrace)
	defer t.Stop()
	var err error
	select {
	case <-done:
	case <-t.C:
		err = errors.New("proxy: sessions still open after the grace period; closed")
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.mu.Lock()
	for s := range p.sessions {
		s.nc.Close()
	}
	p.mu.Unlock()
	return err
}

func (p *Proxy) count(c *command) {
	p.stats.ops.Add(1)
	p.metrics.commandCounter(c).Inc()
}

func (p *Proxy) countErr(c *command) {
	p.stats.fails.Add(1)
	p.metrics.errorCounter(c).Inc()
}
