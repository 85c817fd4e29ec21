package topom

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/topom/topom/clients/go/topompb"
)

// TestTablesOfOneProcessShareSlots: two watchers' snapshots, decoded from
// separate messages, hold the same *Slot for each slot; a Slot no table
// reaches any more leaves the intern map.
func TestTablesOfOneProcessShareSlots(t *testing.T) {
	decoded := func() *topompb.SlotsUpdate {
		u := fullReset("intern-e1", 5, "127.0.0.1:16379")
		for _, p := range u.Slots {
			p.BackendAddr = strings.Clone(p.BackendAddr)
			p.ReplicaGroups = []*topompb.ReplicaGroup{{Addrs: []string{strings.Clone("127.0.0.1:16380")}}}
		}
		return u
	}
	a, err := Apply(nil, decoded())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Apply(nil, decoded())
	if err != nil {
		t.Fatal(err)
	}
	for i := range SlotCount {
		if a.SlotAt(i) != b.SlotAt(i) {
			t.Fatalf("slot %d: two tables of the same routing hold separate Slots", i)
		}
	}
	// Routing that differs only in the replica groups' split is another Slot.
	u := decoded()
	u.Revision = 6
	u.Slots[7].ReplicaGroups = []*topompb.ReplicaGroup{{Addrs: []string{"127.0.0.1:1", "6380"}}}
	v := decoded()
	v.Revision = 6
	v.Slots[7].ReplicaGroups = []*topompb.ReplicaGroup{{Addrs: []string{"127.0.0.1:1"}}, {Addrs: []string{"6380"}}}
	if _, err := Apply(a, u); err == nil {
		t.Fatal(`"6380" was accepted as an address`)
	}
	u.Slots[7].ReplicaGroups[0].Addrs[1] = "h:6380"
	v.Slots[7].ReplicaGroups[1].Addrs[0] = "h:6380"
	au, err := Apply(a, u)
	if err != nil {
		t.Fatal(err)
	}
	bv, err := Apply(b, v)
	if err != nil {
		t.Fatal(err)
	}
	if au.SlotAt(7) == bv.SlotAt(7) || len(bv.SlotAt(7).ReplicaGroups) != 2 {
		t.Fatalf("slot 7: one group of two and two groups of one share a Slot: %+v", bv.SlotAt(7))
	}

	before := internedCount()
	a, b, au, bv = nil, nil, nil, nil
	deadline := time.Now().Add(10 * time.Second)
	for internedCount() > before-SlotCount {
		if time.Now().After(deadline) {
			t.Fatalf("%d interned Slots after dropping every table, had %d", internedCount(), before)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
