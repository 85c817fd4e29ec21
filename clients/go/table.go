package topom

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/topom/topom/clients/go/topompb"
)

// Errors a table lookup returns.
var (
	// ErrFenced means the proxy's lease ran out: no slot may be served until
	// a fresh snapshot has been applied after reconnecting to topom.
	ErrFenced = errors.New("topom: fenced: the slot lease ran out; no slot is served until a fresh snapshot from topom is applied")
	// ErrNotSynced means no slot table has been received yet.
	ErrNotSynced = errors.New("topom: not synced: no slot table received from topom yet")
)

// Slot is how a proxy must serve one slot now (the proxy view of
// topompb.Slot).
type Slot struct {
	ID               int
	Locked           bool   // hold requests until a newer table unlocks it
	Backend          string // master "host:port"; "" = offline
	BackendGroup     uint32
	MigrateFrom      string // "" unless migrating: the source master
	MigrateFromGroup uint32
	Method           topompb.ForwardMethod
	ReplicaGroups    [][]string // best first (same dc+host, same dc, elsewhere); empty while migrating
}

// Equal reports whether s and o describe the same routing.
func (s *Slot) Equal(o *Slot) bool {
	if s.ID != o.ID || s.Locked != o.Locked || s.Backend != o.Backend ||
		s.BackendGroup != o.BackendGroup || s.MigrateFrom != o.MigrateFrom ||
		s.MigrateFromGroup != o.MigrateFromGroup || s.Method != o.Method ||
		len(s.ReplicaGroups) != len(o.ReplicaGroups) {
		return false
	}
	for i := range s.ReplicaGroups {
		if !slices.Equal(s.ReplicaGroups[i], o.ReplicaGroups[i]) {
			return false
		}
	}
	return true
}

// Migrating reports whether keys must be moved from MigrateFrom first.
func (s *Slot) Migrating() bool { return s.MigrateFrom != "" }

// Table is an immutable snapshot of the slot table. It is never mutated after
// it has been published; build a new one with Apply.
type Table struct {
	Epoch    string
	Revision uint64
	Slots    [SlotCount]Slot
	// Sentinel is the last sentinel set topom sent (nil if none yet).
	Sentinel *topompb.Sentinel
}

// Slot returns the slot a key maps to.
func (t *Table) Slot(key []byte) *Slot { return &t.Slots[SlotOf(key)] }

// Changed returns the ids of the slots whose Slot differs between a and b, in
// increasing order. A nil a (or b) counts as differing in every slot.
func Changed(a, b *Table) []int {
	if a == nil || b == nil {
		ids := make([]int, SlotCount)
		for i := range ids {
			ids[i] = i
		}
		return ids
	}
	var ids []int
	for i := range a.Slots {
		if !a.Slots[i].Equal(&b.Slots[i]) {
			ids = append(ids, i)
		}
	}
	return ids
}

// SlotFromProto converts and validates one slot of an update.
func SlotFromProto(p *topompb.Slot) (Slot, error) {
	if p.GetId() >= SlotCount {
		return Slot{}, fmt.Errorf("slot id %d out of range 0..%d", p.GetId(), SlotCount-1)
	}
	s := Slot{
		ID:               int(p.GetId()),
		Locked:           p.GetLocked(),
		Backend:          p.GetBackendAddr(),
		BackendGroup:     p.GetBackendGroupId(),
		MigrateFrom:      p.GetMigrateFrom(),
		MigrateFromGroup: p.GetMigrateFromGroupId(),
		Method:           p.GetForwardMethod(),
	}
	if s.Backend != "" {
		if err := checkAddr(s.Backend); err != nil {
			return Slot{}, fmt.Errorf("slot %d: backend_addr: %w", s.ID, err)
		}
	}
	if s.MigrateFrom != "" {
		if err := checkAddr(s.MigrateFrom); err != nil {
			return Slot{}, fmt.Errorf("slot %d: migrate_from: %w", s.ID, err)
		}
	}
	for i, g := range p.GetReplicaGroups() {
		addrs := g.GetAddrs()
		for _, a := range addrs {
			if err := checkAddr(a); err != nil {
				return Slot{}, fmt.Errorf("slot %d: replica_groups[%d]: %w", s.ID, i, err)
			}
		}
		s.ReplicaGroups = append(s.ReplicaGroups, slices.Clone(addrs))
	}
	return s, nil
}

// checkAddr accepts "host:port" with a non-empty host and a port 1..65535.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q has an empty host", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has a bad port (want 1..65535)", addr)
	}
	return nil
}

// Apply builds the table that update u brings prev to, without touching prev.
// It checks everything a proxy must check before serving: a delta needs a
// base of the same epoch, revisions grow within an epoch, a reset lists every
// slot once, slot ids are in range and addresses are host:port. The error says
// what is wrong; it is what the watcher sends as the NACK reason.
func Apply(prev *Table, u *topompb.SlotsUpdate) (*Table, error) {
	if u.GetEpoch() == "" {
		return nil, errors.New("update has an empty epoch")
	}
	next := &Table{Epoch: u.GetEpoch(), Revision: u.GetRevision()}
	if u.GetReset_() {
		if prev != nil && prev.Epoch == u.GetEpoch() && u.GetRevision() < prev.Revision {
			return nil, fmt.Errorf("reset to revision %d goes backwards from applied revision %d of epoch %s",
				u.GetRevision(), prev.Revision, prev.Epoch)
		}
		if len(u.GetSlots()) != SlotCount {
			return nil, fmt.Errorf("reset lists %d slots, want all %d", len(u.GetSlots()), SlotCount)
		}
		var seen [SlotCount]bool
		for _, p := range u.GetSlots() {
			s, err := SlotFromProto(p)
			if err != nil {
				return nil, err
			}
			if seen[s.ID] {
				return nil, fmt.Errorf("reset lists slot %d twice", s.ID)
			}
			seen[s.ID] = true
			next.Slots[s.ID] = s
		}
		next.Sentinel = u.GetSentinel()
		return next, nil
	}
	if prev == nil {
		return nil, fmt.Errorf("delta to revision %d of epoch %s without a base table (expected a reset)",
			u.GetRevision(), u.GetEpoch())
	}
	if prev.Epoch != u.GetEpoch() {
		return nil, fmt.Errorf("delta of epoch %s on a table of epoch %s (a new epoch must start with a reset)",
			u.GetEpoch(), prev.Epoch)
	}
	// An empty delta at the applied revision is topom saying "you are
	// current" (a resumed stream with nothing new).
	if u.GetRevision() < prev.Revision || (u.GetRevision() == prev.Revision && len(u.GetSlots()) > 0) {
		return nil, fmt.Errorf("delta revision %d does not follow applied revision %d", u.GetRevision(), prev.Revision)
	}
	next.Slots = prev.Slots // copies the array; the slices inside are never mutated
	next.Sentinel = prev.Sentinel
	var seen [SlotCount]bool
	for _, p := range u.GetSlots() {
		s, err := SlotFromProto(p)
		if err != nil {
			return nil, err
		}
		if seen[s.ID] {
			return nil, fmt.Errorf("delta lists slot %d twice", s.ID)
		}
		seen[s.ID] = true
		next.Slots[s.ID] = s
	}
	if u.GetSentinel() != nil {
		next.Sentinel = u.GetSentinel()
	}
	return next, nil
}
