package topom

import (
	"encoding/binary"
	"runtime"
	"sync"
	"weak"
)

// Slots are interned process-wide: every watcher in a process (one per proxy,
// or a thousand in a test harness) that applies the same routing for a slot
// shares one *Slot. Without it each watcher's snapshot held its own 1024
// Slots (≈ 90 KB), and with many watchers the garbage collector spent its
// cycles marking copies of the same table. Entries are weak: a Slot no table
// reaches any more is collected and its entry removed.
var slotIntern = struct {
	mu sync.Mutex
	m  map[slotKey]weak.Pointer[Slot]
}{m: make(map[slotKey]weak.Pointer[Slot])}

// slotKey is the comparable form of a Slot's routing.
type slotKey struct {
	id               int
	backend          string
	migrateFrom      string
	replicaGroups    string // length-prefixed addresses, see replicaKey
	backendGroup     uint32
	migrateFromGroup uint32
	method           int32
	locked           bool
}

func keyOf(s *Slot) slotKey {
	return slotKey{
		id:               s.ID,
		backend:          s.Backend,
		migrateFrom:      s.MigrateFrom,
		replicaGroups:    replicaKey(s.ReplicaGroups),
		backendGroup:     s.BackendGroup,
		migrateFromGroup: s.MigrateFromGroup,
		method:           int32(s.Method),
		locked:           s.Locked,
	}
}

// replicaKey encodes groups unambiguously: each group is its address count,
// then each address as its length and bytes (addresses may hold any byte).
func replicaKey(groups [][]string) string {
	if len(groups) == 0 {
		return ""
	}
	var b []byte
	for _, g := range groups {
		b = binary.AppendUvarint(b, uint64(len(g)))
		for _, a := range g {
			b = binary.AppendUvarint(b, uint64(len(a)))
			b = append(b, a...)
		}
	}
	return string(b)
}

// intern returns the process's shared Slot equal to s, making s that Slot if
// there is none. s must not be modified afterwards.
func intern(s *Slot) *Slot {
	k := keyOf(s)
	slotIntern.mu.Lock()
	defer slotIntern.mu.Unlock()
	if p := slotIntern.m[k].Value(); p != nil {
		return p
	}
	wp := weak.Make(s)
	slotIntern.m[k] = wp
	runtime.AddCleanup(s, forget, internEntry{k, wp})
	return s
}

type internEntry struct {
	key slotKey
	wp  weak.Pointer[Slot]
}

// forget removes a collected Slot's entry, unless a newer Slot has taken it.
func forget(e internEntry) {
	slotIntern.mu.Lock()
	defer slotIntern.mu.Unlock()
	if slotIntern.m[e.key] == e.wp {
		delete(slotIntern.m, e.key)
	}
}

// internedCount is the number of live entries (for tests).
func internedCount() int {
	slotIntern.mu.Lock()
	defer slotIntern.mu.Unlock()
	return len(slotIntern.m)
}
