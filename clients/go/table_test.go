package topom

import (
	"strings"
	"testing"

	"github.com/topom/topom/clients/go/topompb"
)

func fullReset(epoch string, rev uint64, backend string) *topompb.SlotsUpdate {
	u := &topompb.SlotsUpdate{Epoch: epoch, Revision: rev, Reset_: true}
	for i := 0; i < SlotCount; i++ {
		u.Slots = append(u.Slots, &topompb.Slot{Id: uint32(i), BackendAddr: backend, BackendGroupId: 1})
	}
	return u
}

func TestApplyValidation(t *testing.T) {
	base, err := Apply(nil, fullReset("e1", 5, "127.0.0.1:6379"))
	if err != nil {
		t.Fatalf("valid reset refused: %v", err)
	}
	delta := func(epoch string, rev uint64, slots ...*topompb.Slot) *topompb.SlotsUpdate {
		return &topompb.SlotsUpdate{Epoch: epoch, Revision: rev, Slots: slots}
	}
	short := fullReset("e1", 6, "127.0.0.1:6379")
	short.Slots = short.Slots[:1023]
	dup := fullReset("e1", 6, "127.0.0.1:6379")
	dup.Slots[1].Id = 0
	for _, c := range []struct {
		name string
		prev *Table
		u    *topompb.SlotsUpdate
		want string
	}{
		{"delta without base", nil, delta("e1", 6), "without a base"},
		{"slot id out of range", base, delta("e1", 6, &topompb.Slot{Id: 1024}), "out of range"},
		{"revision backwards", base, delta("e1", 4, &topompb.Slot{Id: 1}), "does not follow"},
		{"same revision with slots", base, delta("e1", 5, &topompb.Slot{Id: 1}), "does not follow"},
		{"delta of another epoch", base, delta("e2", 6), "new epoch must start with a reset"},
		{"reset backwards", base, fullReset("e1", 4, "127.0.0.1:1"), "goes backwards"},
		{"reset missing a slot", base, short, "want all 1024"},
		{"reset with a duplicate", base, dup, "twice"},
		{"backend not host:port", base, delta("e1", 6, &topompb.Slot{Id: 1, BackendAddr: "nohost"}), "not host:port"},
		{"backend bad port", base, delta("e1", 6, &topompb.Slot{Id: 1, BackendAddr: "h:99999"}), "bad port"},
		{"replica not host:port", base, delta("e1", 6, &topompb.Slot{Id: 1, ReplicaGroups: []*topompb.ReplicaGroup{{Addrs: []string{"x"}}}}), "replica_groups[0]"},
		{"empty epoch", base, delta("", 6), "empty epoch"},
	} {
		next, err := Apply(c.prev, c.u)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Apply = %v, %v; want an error containing %q", c.name, next, err, c.want)
		}
	}
	// A valid delta changes only its slots and leaves prev untouched.
	next, err := Apply(base, delta("e1", 7, &topompb.Slot{Id: 3, BackendAddr: "127.0.0.1:7000", BackendGroupId: 2}))
	if err != nil {
		t.Fatal(err)
	}
	if got := Changed(base, next); len(got) != 1 || got[0] != 3 {
		t.Errorf("Changed = %v, want [3]", got)
	}
	if base.SlotAt(3).Backend != "127.0.0.1:6379" || next.SlotAt(3).Backend != "127.0.0.1:7000" || next.Revision != 7 {
		t.Errorf("delta applied wrongly: base %+v next %+v rev %d", base.SlotAt(3), next.SlotAt(3), next.Revision)
	}
	// An empty delta at the applied revision ("you are current") is fine.
	if _, err := Apply(next, delta("e1", 7)); err != nil {
		t.Errorf("empty delta at the same revision refused: %v", err)
	}
}

func TestReadBackend(t *testing.T) {
	tb := &Table{}
	var owned [chunkCount]bool
	tb.set(1, &Slot{ID: 1, Backend: "m:1", ReplicaGroups: [][]string{{}, {"r1:1", "r2:1"}, {"far:1"}}}, &owned)
	tb.set(2, &Slot{ID: 2, Backend: "m:1", MigrateFrom: "src:1", ReplicaGroups: [][]string{{"r:1"}}}, &owned)
	if got := tb.ReadBackend(1, false, nil); got != "m:1" {
		t.Errorf("no replica preference: %q", got)
	}
	if got := tb.ReadBackend(1, true, nil); got != "r1:1" {
		t.Errorf("best non-empty bucket first: %q", got)
	}
	if got := tb.ReadBackend(1, true, func(int) int { return 1 }); got != "r2:1" {
		t.Errorf("pick within bucket: %q", got)
	}
	if got := tb.ReadBackend(2, true, nil); got != "m:1" {
		t.Errorf("migrating slot reads the master: %q", got)
	}
	if got := tb.ReadBackend(1024, true, nil); got != "" {
		t.Errorf("out of range: %q", got)
	}
}
