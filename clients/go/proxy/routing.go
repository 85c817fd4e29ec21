package proxy

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	topom "github.com/topom/topom/clients/go"
	"github.com/topom/topom/clients/go/topompb"
)

// slotRoute is how one slot is served now. Forwarders hold mu for reading
// while they pick a backend and queue the request, and count it in refs
// until its reply is back; Apply takes mu for writing and waits for refs,
// so a slot changes backend only once its in-flight requests have drained
// (one client's commands on one key never overtake each other).
type slotRoute struct {
	mu      sync.RWMutex
	refs    sync.WaitGroup
	slot    topom.Slot
	backend *backendPool
	from    *backendPool  // migration source, nil unless migrating
	unlock  chan struct{} // non-nil while locked: closed when a newer table arrives
	// replicas serve reads when Config.ReadReplicas is set: the servers of
	// the slot's best replica bucket (topom orders the buckets by closeness
	// to this proxy: same datacenter and host, same datacenter, the rest).
	replicas []*backendPool
}

// router implements topom.Applier.
type router struct {
	p        *Proxy
	slots    [topom.SlotCount]slotRoute
	fenced   atomic.Bool
	synced   atomic.Bool
	revision atomic.Uint64
	// leaseLive, when set, is checked per request (see SetLeaseCheck).
	leaseLive func() bool

	poolsMu sync.Mutex
	pools   map[string]*backendPool
	refsBy  map[string]int // slots that name each pool
}

func newRouter(p *Proxy) *router {
	r := &router{p: p, pools: map[string]*backendPool{}, refsBy: map[string]int{}}
	return r
}

// Apply makes next the serving table (see topom.Applier).
func (r *router) Apply(prev, next *topom.Table) error {
	changed := topom.Changed(prev, next)
	if !r.synced.Load() {
		changed = topom.Changed(nil, next)
	}
	// Open connections to new servers before the switch.
	for _, id := range changed {
		s := next.SlotAt(id)
		r.retain(s.Backend)
		r.retain(s.MigrateFrom)
		for _, a := range r.readReplicas(s) {
			r.retain(a)
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, id := range changed {
		wg.Add(1)
		sem <- struct{}{}
		go func(id int) {
			defer func() { <-sem; wg.Done() }()
			r.switchSlot(id, *next.SlotAt(id))
		}(id)
	}
	wg.Wait()
	r.revision.Store(next.Revision)
	r.synced.Store(true)
	r.fenced.Store(false)
	r.p.metrics.revision.Set(float64(next.Revision))
	r.p.metrics.fenced.Set(0)
	return nil
}

func (r *router) switchSlot(id int, s topom.Slot) {
	sr := &r.slots[id]
	sr.mu.Lock()
	sr.refs.Wait()
	oldB, oldF, oldR := sr.slot.Backend, sr.slot.MigrateFrom, r.readReplicas(&sr.slot)
	sr.slot = s
	sr.backend = r.pool(s.Backend)
	sr.from = r.pool(s.MigrateFrom)
	var reps []*backendPool // new, not reused: routes taken earlier hold the old one
	for _, a := range r.readReplicas(&s) {
		reps = append(reps, r.pool(a))
	}
	sr.replicas = reps
	if sr.unlock != nil {
		close(sr.unlock)
		sr.unlock = nil
	}
	if s.Locked {
		sr.unlock = make(chan struct{})
	}
	sr.mu.Unlock()
	r.release(oldB)
	r.release(oldF)
	for _, a := range oldR {
		r.release(a)
	}
}

// readReplicas is the replica bucket the proxy reads from for s: none
// unless Config.ReadReplicas is set (topom lists none for a locked or
// migrating slot).
func (r *router) readReplicas(s *topom.Slot) []string {
	if !r.p.cfg.ReadReplicas || len(s.ReplicaGroups) == 0 {
		return nil
	}
	return s.ReplicaGroups[0]
}

// Fence makes every lookup fail until the next Apply.
func (r *router) Fence() {
	r.fenced.Store(true)
	r.p.metrics.fenced.Set(1)
	r.p.log.Warn("fenced: lease with topom ran out; refusing every request until re-synced")
}

func (r *router) retain(addr string) {
	if addr == "" {
		return
	}
	r.poolsMu.Lock()
	defer r.poolsMu.Unlock()
	r.refsBy[addr]++
	if r.pools[addr] == nil {
		r.pools[addr] = newBackendPool(addr, r.p.cfg.BackendConns, r.p.backendCfg)
	}
}

func (r *router) release(addr string) {
	if addr == "" {
		return
	}
	r.poolsMu.Lock()
	defer r.poolsMu.Unlock()
	r.refsBy[addr]--
	if r.refsBy[addr] <= 0 {
		if p := r.pools[addr]; p != nil {
			p.close()
		}
		delete(r.pools, addr)
		delete(r.refsBy, addr)
	}
}

func (r *router) pool(addr string) *backendPool {
	if addr == "" {
		return nil
	}
	r.poolsMu.Lock()
	defer r.poolsMu.Unlock()
	return r.pools[addr]
}

func (r *router) anyPool() *backendPool {
	r.poolsMu.Lock()
	defer r.poolsMu.Unlock()
	for _, p := range r.pools {
		return p
	}
	return nil
}

// Errors a request may get from routing.
var (
	errFenced   = "ERR proxy is fenced: its lease with topom ran out; it serves nothing until it has re-synced"
	errNoTable  = "ERR proxy has no slot table from topom yet"
	errDraining = "ERR proxy is shutting down"
)

func errMoving(slot int) string {
	return fmt.Sprintf("ERR slot %d is being moved, retry", slot)
}

func errOffline(slot int) string {
	return fmt.Sprintf("ERR slot %d is not assigned to any group", slot)
}

// route is what a forwarder gets: the backends of the slot, with the slot's
// ref held (release it with done once the request's reply is back).
type route struct {
	sr       *slotRoute
	id       int
	backend  *backendPool
	from     *backendPool
	replicas []*backendPool
	method   topompb.ForwardMethod
}

func (rt route) done() { rt.sr.refs.Done() }

// acquire waits while the slot is locked (up to the hold timeout) and
// returns its route with a ref held, or an error reply. beforeWait, if set,
// runs before it waits (a session flushes its buffered backend writes).
func (r *router) acquire(id int, beforeWait func()) (route, string) {
	sr := &r.slots[id]
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if r.fenced.Load() {
			return route{}, errFenced
		}
		if !r.synced.Load() {
			return route{}, errNoTable
		}
		if f := r.leaseLive; f != nil && !f() {
			return route{}, errFenced
		}
		if !sr.mu.TryRLock() {
			// An Apply is switching this slot and waits for its requests in
			// flight, some perhaps still in this session's unflushed backend
			// writes: send them before blocking, or neither side moves.
			if beforeWait != nil {
				beforeWait()
			}
			sr.mu.RLock()
		}
		if ch := sr.unlock; ch != nil {
			sr.mu.RUnlock()
			if timer == nil {
				if beforeWait != nil {
					beforeWait()
				}
				timer = time.NewTimer(r.p.cfg.LockedHold)
			}
			select {
			case <-ch:
				continue
			case <-timer.C:
				r.p.metrics.movingErrors.Inc()
				return route{}, errMoving(id)
			}
		}
		if sr.backend == nil {
			sr.mu.RUnlock()
			return route{}, errOffline(id)
		}
		// Checked again under the lock: Fence may have run meanwhile.
		if r.fenced.Load() {
			sr.mu.RUnlock()
			return route{}, errFenced
		}
		sr.refs.Add(1)
		rt := route{sr: sr, id: id, backend: sr.backend, from: sr.from, replicas: sr.replicas, method: sr.slot.Method}
		sr.mu.RUnlock()
		return rt, ""
	}
}
