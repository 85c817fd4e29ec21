package topom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/topom/topom/clients/go/topompb"
)

// WatcherState is where a SlotWatcher stands.
type WatcherState int32

const (
	// StateSyncing: no table yet (lookups fail with ErrNotSynced).
	StateSyncing WatcherState = iota
	// StateServing: a table is applied and the lease is live.
	StateServing
	// StateFenced: the lease ran out; lookups fail with ErrFenced until a
	// fresh snapshot is applied after reconnecting.
	StateFenced
)

func (s WatcherState) String() string {
	switch s {
	case StateSyncing:
		return "syncing"
	case StateServing:
		return "serving"
	case StateFenced:
		return "fenced"
	}
	return fmt.Sprintf("WatcherState(%d)", int32(s))
}

// Applier is the proxy's hook into the watcher.
type Applier interface {
	// Apply makes next the table that serves. It is called in revision order
	// from one goroutine; the watcher ACKs next.Revision only after Apply
	// returns nil (so Apply must return only once every changed slot's
	// in-flight requests have drained and new requests see next). A non-nil
	// error NACKs the update with err.Error() and keeps the old table. prev is
	// the last applied table (nil at first).
	Apply(prev, next *Table) error
	// Fence is called when the lease runs out: every lookup must fail with
	// ErrFenced until the next Apply, which follows a fresh snapshot.
	Fence()
}

// WatcherConfig configures a SlotWatcher.
type WatcherConfig struct {
	// Proxy describes the proxy (token, proxy_addr, admin_addr, datacenter,
	// pid, hostname, version). Token is required. StartTime defaults to now.
	Proxy *topompb.Proxy
	// Applier is called for every update and on fencing; nil: the watcher's
	// own table only.
	Applier Applier
	// Stats, when set, is called every StatsInterval and sent on the stream
	// (it shows in GetStats).
	Stats func() *topompb.ProxyStats
	// StatsInterval defaults to 5 s.
	StatsInterval time.Duration
	// OnChange, when set, is called (from the watcher's goroutine, keep it
	// short) after every state change and every applied table.
	OnChange func(state WatcherState, t *Table)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the jittered exponential reconnect
	// delay (defaults 100 ms and 5 s).
	MinBackoff, MaxBackoff time.Duration
}

// SlotWatcher follows topom's slot table for one proxy: RegisterProxy, then
// WatchSlots; it applies and ACKs (or NACKs) each update, sends numbered
// heartbeats, holds the lease and fences when it runs out, and reconnects
// across the client's endpoints.
type SlotWatcher struct {
	c   *Client
	cfg WatcherConfig
	log *slog.Logger

	table atomic.Pointer[Table] // last applied table
	state atomic.Int32          // WatcherState
	lease *lease

	// applyMu orders Applier calls: an Apply that began before a fence
	// finishes before Applier.Fence, and a delta after a fence is refused.
	applyMu sync.Mutex

	mu         sync.Mutex // guards the fields below and serializes state changes
	stopStream context.CancelFunc
	registered *topompb.RegisterProxyResponse
	// fresh is set once a reset has been applied since the last fence.
	fresh bool

	changed chan struct{} // closed and replaced on every change
}

// NewSlotWatcher returns a watcher; call Run to start it.
func NewSlotWatcher(c *Client, cfg WatcherConfig) *SlotWatcher {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StatsInterval <= 0 {
		cfg.StatsInterval = 5 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	if cfg.Proxy == nil {
		cfg.Proxy = &topompb.Proxy{}
	}
	p := cfg.Proxy
	if p.StartTime == nil {
		p.StartTime = timestamppb.Now()
	}
	if p.Pid == 0 {
		p.Pid = uint32(os.Getpid())
	}
	if p.Hostname == "" {
		p.Hostname, _ = os.Hostname()
	}
	return &SlotWatcher{
		c:       c,
		cfg:     cfg,
		log:     cfg.Logger.With("proxy", p.GetToken()),
		lease:   newLease(),
		changed: make(chan struct{}),
	}
}

// Table returns the table to serve from, or ErrFenced / ErrNotSynced. The
// table is immutable; the call takes no lock.
func (w *SlotWatcher) Table() (*Table, error) {
	switch WatcherState(w.state.Load()) {
	case StateFenced:
		return nil, ErrFenced
	case StateSyncing:
		return nil, ErrNotSynced
	}
	return w.table.Load(), nil
}

// State returns the watcher's state.
func (w *SlotWatcher) State() WatcherState { return WatcherState(w.state.Load()) }

// Ready reports whether the watcher is serving (for a readiness probe).
func (w *SlotWatcher) Ready() bool { return w.State() == StateServing }

// AppliedRevision returns the epoch and revision of the last applied table
// ("" and 0 if none).
func (w *SlotWatcher) AppliedRevision() (string, uint64) {
	if t := w.table.Load(); t != nil {
		return t.Epoch, t.Revision
	}
	return "", 0
}

// Changed returns a channel closed at the next state change or applied table.
func (w *SlotWatcher) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// Registration returns topom's last RegisterProxy answer (nil before).
func (w *SlotWatcher) Registration() *topompb.RegisterProxyResponse {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.registered
}

// notify runs OnChange and wakes Changed waiters; w.mu must not be held.
func (w *SlotWatcher) notify() {
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
	if w.cfg.OnChange != nil {
		w.cfg.OnChange(w.State(), w.table.Load())
	}
}

// Run follows topom until ctx ends (then it returns ctx.Err()). topom being
// unreachable is retried with jittered exponential backoff, never in a busy
// loop.
func (w *SlotWatcher) Run(ctx context.Context) error {
	if w.cfg.Proxy.GetToken() == "" {
		return errors.New("topom: SlotWatcher: WatcherConfig.Proxy.Token is required")
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.watchdog(wctx)
	b := backoff{min: w.cfg.MinBackoff, max: w.cfg.MaxBackoff}
	for {
		heard, err := w.session(wctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if heard {
			b.reset()
		}
		d := b.next()
		w.log.Warn("topom slot stream ended; reconnecting", "err", err, "endpoint", w.c.Current(), "in", d)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// watchdog fences the watcher when the lease runs out, also while it is
// disconnected. It sleeps until the deadline or a renewal.
func (w *SlotWatcher) watchdog(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		live, deadline := w.lease.live(time.Now())
		wait := time.Hour
		if live {
			wait = time.Until(deadline)
		} else if !deadline.IsZero() {
			w.fence()
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-w.lease.renewed:
		case <-timer.C:
		}
	}
}

// fence moves to StateFenced (once), tells the Applier, and ends the current
// stream so that the next one starts from a fresh snapshot.
func (w *SlotWatcher) fence() {
	w.mu.Lock()
	if WatcherState(w.state.Load()) == StateFenced || w.table.Load() == nil {
		w.mu.Unlock()
		return
	}
	w.state.Store(int32(StateFenced))
	w.fresh = false
	if w.stopStream != nil {
		w.stopStream()
	}
	w.mu.Unlock()
	w.log.Error("slot lease ran out: fenced, serving no slot until a fresh snapshot is applied")
	if w.cfg.Applier != nil {
		w.applyMu.Lock()
		w.cfg.Applier.Fence()
		w.applyMu.Unlock()
	}
	w.notify()
}

// session runs one RegisterProxy + WatchSlots stream; heard says whether a
// message arrived on it (which resets the backoff).
func (w *SlotWatcher) session(ctx context.Context) (heard bool, err error) {
	reg, err := w.c.RegisterProxy(ctx, w.cfg.Proxy)
	if err != nil {
		return false, fmt.Errorf("RegisterProxy: %w", err)
	}
	ttl := reg.GetLeaseTtl().AsDuration()
	hb := reg.GetHeartbeatInterval().AsDuration()
	if ttl <= 0 || hb <= 0 {
		return true, fmt.Errorf("RegisterProxy: topom announced lease_ttl %s and heartbeat_interval %s; both must be positive", ttl, hb)
	}
	w.lease.setTTL(ttl)

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w.mu.Lock()
	w.registered = reg
	w.stopStream = cancel
	fenced := WatcherState(w.state.Load()) == StateFenced
	w.mu.Unlock()

	addr := w.c.Current()
	stream, err := w.c.ProxyControl.WatchSlots(sctx)
	if err != nil {
		return false, fmt.Errorf("WatchSlots on %s: %w", addr, err)
	}
	hello := &topompb.WatchHello{Token: w.cfg.Proxy.GetToken()}
	if t := w.table.Load(); t != nil && !fenced {
		hello.Epoch, hello.AppliedRevision = t.Epoch, t.Revision
	}
	w.lease.newStream()
	helloSent := time.Now()
	if err := stream.Send(&topompb.WatchSlotsRequest{Kind: &topompb.WatchSlotsRequest_Hello{Hello: hello}}); err != nil {
		return false, fmt.Errorf("WatchSlots hello to %s: %w", addr, err)
	}

	// ACKs and NACKs go out from this loop directly (no hop to another
	// goroutine per update); heartbeats and stats from the beat goroutine.
	tx := &streamSender{stream: stream}
	sendErr := make(chan error, 1)
	go func() {
		sendErr <- w.beat(sctx, tx, hb)
	}()

	first := true
	var nacked, ackErr error
	for {
		m, err := stream.Recv()
		if nacked != nil && err != nil {
			return false, nacked
		}
		if err != nil {
			w.c.streamFailed(addr, err, stream.Trailer())
			se := ackErr
			if se == nil {
				select {
				case se = <-sendErr:
				default:
				}
			}
			if se != nil && ctx.Err() == nil {
				err = fmt.Errorf("%w (send: %v)", err, se)
			}
			return heard, fmt.Errorf("WatchSlots on %s: %w", addr, err)
		}
		heard = true
		switch k := m.GetKind().(type) {
		case *topompb.WatchSlotsResponse_Heartbeat:
			if k.Heartbeat.GetAckSeq() != 0 && w.lease.echoed(k.Heartbeat.GetAckSeq()) {
				w.maybeServe()
			}
		case *topompb.WatchSlotsResponse_Update:
			if first {
				// topom renews its side of the lease on the hello and answers
				// it with this update: the hello counts as heartbeat zero.
				w.lease.renewFrom(helloSent)
				first = false
			}
			if nacked != nil {
				continue // draining: this stream's deltas no longer fit our table
			}
			reply, ok := w.apply(k.Update)
			if err := tx.send(reply); err != nil && ackErr == nil {
				// The stream is broken: the next Recv fails with its status.
				ackErr = err
			}
			if !ok {
				// topom computes the next delta from the revision it sent, which
				// we do not hold: end the stream (after the NACK) and resume
				// from what we applied. Not resetting the backoff keeps a
				// persistent refusal from looping fast.
				nacked = fmt.Errorf("refused the update to revision %d; resuming from revision %d", k.Update.GetRevision(), w.appliedRevision())
				tx.closeSend()
			}
		}
	}
}

// appliedRevision is the revision of the last applied table (0 if none).
func (w *SlotWatcher) appliedRevision() uint64 {
	_, r := w.AppliedRevision()
	return r
}

// apply validates and applies one update and returns the ACK (true) or the
// NACK (false).
func (w *SlotWatcher) apply(u *topompb.SlotsUpdate) (*topompb.WatchSlotsRequest, bool) {
	nack := func(reason string) (*topompb.WatchSlotsRequest, bool) {
		w.log.Warn("rejected slot update", "revision", u.GetRevision(), "reason", reason)
		return &topompb.WatchSlotsRequest{Kind: &topompb.WatchSlotsRequest_Nack{Nack: &topompb.SlotsNack{
			Revision: u.GetRevision(), Nonce: u.GetNonce(), Reason: reason}}}, false
	}
	w.applyMu.Lock()
	defer w.applyMu.Unlock()
	prev := w.table.Load()
	if w.State() == StateFenced && !u.GetReset_() {
		return nack(fmt.Sprintf("fenced: waiting for a full snapshot, got a delta to revision %d", u.GetRevision()))
	}
	next, err := Apply(prev, u)
	if err != nil {
		return nack(err.Error())
	}
	if w.cfg.Applier != nil {
		if err := w.cfg.Applier.Apply(prev, next); err != nil {
			return nack(err.Error())
		}
	}
	w.mu.Lock()
	w.table.Store(next)
	if u.GetReset_() {
		w.fresh = true
	}
	w.mu.Unlock()
	w.maybeServe()
	w.notify()
	return &topompb.WatchSlotsRequest{Kind: &topompb.WatchSlotsRequest_Ack{Ack: &topompb.SlotsAck{
		Revision: next.Revision, Nonce: u.GetNonce()}}}, true
}

// maybeServe moves to StateServing when a table is applied (a fresh one after
// a fence) and the lease is live.
func (w *SlotWatcher) maybeServe() {
	if w.State() == StateServing { // the common case, after every update
		return
	}
	w.mu.Lock()
	st := WatcherState(w.state.Load())
	live, _ := w.lease.live(time.Now())
	ok := st != StateServing && w.table.Load() != nil && live && (st != StateFenced || w.fresh)
	if ok {
		w.state.Store(int32(StateServing))
	}
	w.mu.Unlock()
	if ok {
		w.log.Info("serving slots")
		w.notify()
	}
}

// backoff is jittered exponential: each delay is uniform in [d/2, d], d
// doubling from min up to max.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

func (b *backoff) reset() { b.cur = 0 }
