package topom

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/topom/topom/clients/go/topompb"
)

// Apply builds the table that update u brings prev to, without touching prev.
// It checks everything a proxy must check before serving: a delta needs a
// base of the same epoch, revisions grow within an epoch, a reset lists every
// slot once, slot ids are in range and addresses are host:port. The error says
// what is wrong; it is what the watcher sends as the NACK reason.
//
// The new table shares prev's Slot for every slot whose routing is unchanged,
// and every other Slot with the tables of other watchers in the process that
// route that slot the same way (see intern).
func Apply(prev *Table, u *topompb.SlotsUpdate) (*Table, error) {
	if u.GetEpoch() == "" {
		return nil, errors.New("update has an empty epoch")
	}
	if u.GetReset_() {
		if prev != nil && prev.Epoch == u.GetEpoch() && u.GetRevision() < prev.Revision {
			return nil, fmt.Errorf("reset to revision %d goes backwards from applied revision %d of epoch %s",
				u.GetRevision(), prev.Revision, prev.Epoch)
		}
		if len(u.GetSlots()) != SlotCount {
			return nil, fmt.Errorf("reset lists %d slots, want all %d", len(u.GetSlots()), SlotCount)
		}
		next := &Table{Epoch: u.GetEpoch(), Revision: u.GetRevision(), Sentinel: u.GetSentinel()}
		if err := next.fill(prev, u.GetSlots(), "reset", addrSet{}); err != nil {
			return nil, err
		}
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
	next := &Table{Epoch: u.GetEpoch(), Revision: u.GetRevision(), chunks: prev.chunks, Sentinel: prev.Sentinel}
	// A delta names few addresses: checking each is cheaper than a set.
	if err := next.fill(prev, u.GetSlots(), "delta", nil); err != nil {
		return nil, err
	}
	if u.GetSentinel() != nil {
		next.Sentinel = u.GetSentinel()
	}
	return next, nil
}

// fill converts and stores the listed slots (each at most once), keeping
// prev's Slot where the routing is the same, and prev's chunk where a reset
// changed none of its slots.
func (t *Table) fill(prev *Table, slots []*topompb.Slot, kind string, checked addrSet) error {
	var seen [SlotCount]bool
	var owned [chunkCount]bool
	for _, p := range slots {
		s, err := slotFromProto(p, checked)
		if err != nil {
			return err
		}
		if seen[s.ID] {
			return fmt.Errorf("%s lists slot %d twice", kind, s.ID)
		}
		seen[s.ID] = true
		var was *Slot
		if prev != nil {
			was = prev.SlotAt(s.ID)
		}
		if sameSlot(was, s) {
			s = was
		} else {
			s = intern(s)
		}
		if t.SlotAt(s.ID) != s {
			t.set(s.ID, s, &owned)
		}
	}
	if prev != nil {
		for i, c := range t.chunks {
			if c != prev.chunks[i] && c != nil && prev.chunks[i] != nil && *c == *prev.chunks[i] {
				t.chunks[i] = prev.chunks[i]
			}
		}
	}
	return nil
}

// SlotFromProto converts and validates one slot of an update.
func SlotFromProto(p *topompb.Slot) (Slot, error) {
	s, err := slotFromProto(p, nil)
	if err != nil {
		return Slot{}, err
	}
	return *s, nil
}

func slotFromProto(p *topompb.Slot, checked addrSet) (*Slot, error) {
	if p.GetId() >= SlotCount {
		return nil, fmt.Errorf("slot id %d out of range 0..%d", p.GetId(), SlotCount-1)
	}
	s := &Slot{
		ID:               int(p.GetId()),
		Locked:           p.GetLocked(),
		BackendGroup:     p.GetBackendGroupId(),
		MigrateFromGroup: p.GetMigrateFromGroupId(),
		Method:           p.GetForwardMethod(),
	}
	var err error
	if a := p.GetBackendAddr(); a != "" { // "" = offline
		if s.Backend, err = checked.check(a); err != nil {
			return nil, fmt.Errorf("slot %d: backend_addr: %w", s.ID, err)
		}
	}
	if a := p.GetMigrateFrom(); a != "" { // "" = not migrating
		if s.MigrateFrom, err = checked.check(a); err != nil {
			return nil, fmt.Errorf("slot %d: migrate_from: %w", s.ID, err)
		}
	}
	if gs := p.GetReplicaGroups(); len(gs) > 0 {
		s.ReplicaGroups = make([][]string, len(gs))
		for i, g := range gs {
			addrs := slices.Clone(g.GetAddrs())
			for j, a := range addrs {
				if addrs[j], err = checked.check(a); err != nil {
					return nil, fmt.Errorf("slot %d: replica_groups[%d]: %w", s.ID, i, err)
				}
			}
			s.ReplicaGroups[i] = addrs
		}
	}
	return s, nil
}

// addrSet holds the addresses already checked in one update. A reset names
// the same few servers in all 1024 slots: each is checked once, and the table
// keeps one copy of it rather than one per slot. A nil set remembers nothing.
type addrSet map[string]string

// check returns addr, or why it is not host:port.
func (c addrSet) check(addr string) (string, error) {
	if s, ok := c[addr]; ok {
		return s, nil
	}
	if err := checkAddr(addr); err != nil {
		return "", err
	}
	if c != nil {
		c[addr] = addr
	}
	return addr, nil
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
