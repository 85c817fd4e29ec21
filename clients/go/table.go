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
	// chunks hold slot i at chunks[i/chunkSize][i%chunkSize]; Apply never
	// leaves one nil. A table shares every chunk an update did not touch,
	// and in the chunks it copies every Slot the update did not change, with
	// the table it was built from: a one-slot delta costs 32 pointers, one
	// chunk and one Slot (≈ 600 bytes) rather than a copy of 1024 pointers
	// (8 KB), which with 1,000 watchers in a process was what the garbage
	// collector spent its time on. Hence neither a chunk nor a Slot may be
	// modified.
	chunks [chunkCount]*slotChunk
	// Sentinel is the last sentinel set topom sent (nil if none yet).
	Sentinel *topompb.Sentinel
}

const (
	chunkSize  = 32
	chunkCount = SlotCount / chunkSize
)

type slotChunk [chunkSize]*Slot

// SlotAt returns slot id (0..1023); it panics on an id out of range, like an
// index. A table from Apply has every slot; a zero Table has none (nil).
func (t *Table) SlotAt(id int) *Slot {
	c := t.chunks[id/chunkSize]
	if c == nil {
		return nil
	}
	return c[id%chunkSize]
}

// Slot returns the slot a key maps to.
func (t *Table) Slot(key []byte) *Slot { return t.SlotAt(SlotOf(key)) }

// set stores s as slot id, copying the chunk first unless owned says this
// table already has its own copy.
func (t *Table) set(id int, s *Slot, owned *[chunkCount]bool) {
	i := id / chunkSize
	if !owned[i] {
		c := new(slotChunk)
		if old := t.chunks[i]; old != nil {
			*c = *old
		}
		t.chunks[i] = c
		owned[i] = true
	}
	t.chunks[i][id%chunkSize] = s
}

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
	for c := range a.chunks {
		if a.chunks[c] == b.chunks[c] {
			continue
		}
		for j := c * chunkSize; j < (c+1)*chunkSize; j++ {
			if !sameSlot(a.SlotAt(j), b.SlotAt(j)) {
				ids = append(ids, j)
			}
		}
	}
	return ids
}

// sameSlot compares shared Slots by pointer first: tables built by Apply share
// every unchanged slot, so the full comparison runs only for changed ones.
func sameSlot(x, y *Slot) bool {
	return x == y || (x != nil && y != nil && x.Equal(y))
}
