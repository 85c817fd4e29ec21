package topom

import (
	"errors"
	"slices"

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
// topompb.Slot). A Slot reached from a Table is shared with other tables and
// must not be modified.
type Slot struct {
	// The fields are ordered so that a Slot takes 80 bytes, not 96: a table
	// holds 1024 of them.
	ID               int
	Backend          string     // master "host:port"; "" = offline
	MigrateFrom      string     // "" unless migrating: the source master
	ReplicaGroups    [][]string // best first (same dc+host, same dc, elsewhere); empty while migrating
	BackendGroup     uint32
	MigrateFromGroup uint32
	Method           topompb.ForwardMethod
	Locked           bool // hold requests until a newer table unlocks it
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
	// Slots[i] is slot i; Apply never leaves one nil. A table shares the Slot
	// of every slot an update did not change with the table it was built
	// from, so that a one-slot delta costs one Slot and not a copy of all
	// 1024 (with 1,000 watchers in a process that copy dominated). Hence
	// neither the array nor a Slot may be modified.
	Slots [SlotCount]*Slot
	// Sentinel is the last sentinel set topom sent (nil if none yet).
	Sentinel *topompb.Sentinel
}

// Slot returns the slot a key maps to.
func (t *Table) Slot(key []byte) *Slot { return t.Slots[SlotOf(key)] }

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
		if !sameSlot(a.Slots[i], b.Slots[i]) {
			ids = append(ids, i)
		}
	}
	return ids
}

// sameSlot compares shared Slots by pointer first: tables built by Apply share
// every unchanged slot, so the full comparison runs only for changed ones.
func sameSlot(x, y *Slot) bool {
	return x == y || (x != nil && y != nil && x.Equal(y))
}
