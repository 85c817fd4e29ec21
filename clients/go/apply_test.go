package topom

import (
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/topom/topom/clients/go/topompb"
)

// TestApplySharesUnchangedSlots pins the structural sharing: a delta
// allocates only the slots it changes, a reset keeps every slot whose routing
// is the same, and the base table is never touched.
func TestApplySharesUnchangedSlots(t *testing.T) {
	reset := fullReset("e1", 5, "127.0.0.1:6379")
	for _, p := range reset.Slots { // as decoded: one copy per slot
		p.BackendAddr = strings.Clone(p.BackendAddr)
	}
	base, err := Apply(nil, reset)
	if err != nil {
		t.Fatal(err)
	}
	for i := range SlotCount {
		s := base.SlotAt(i)
		if s == nil || s.ID != i {
			t.Fatalf("reset: slot %d is %+v", i, s)
		}
	}
	// One copy of an address for the whole table, not one per slot.
	if unsafe.StringData(base.SlotAt(0).Backend) != unsafe.StringData(base.SlotAt(1023).Backend) {
		t.Error("reset: slots 0 and 1023 hold separate copies of the same backend address")
	}

	next, err := Apply(base, &topompb.SlotsUpdate{Epoch: "e1", Revision: 6, Slots: []*topompb.Slot{
		{Id: 3, BackendAddr: "127.0.0.1:7000", BackendGroupId: 2},
		{Id: 4, BackendAddr: "127.0.0.1:6379", BackendGroupId: 1}, // restated unchanged
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range SlotCount {
		if shared := next.SlotAt(i) == base.SlotAt(i); shared != (i != 3) {
			t.Errorf("delta: slot %d shared with the base = %v, want %v", i, shared, i != 3)
		}
	}
	if base.SlotAt(3).Backend != "127.0.0.1:6379" || base.Revision != 5 {
		t.Errorf("delta modified its base: slot 3 %+v, revision %d", base.SlotAt(3), base.Revision)
	}

	// A reconnect's reset with the same content keeps the Slots too, so an
	// Applier sees (and Changed reports) only what really changed.
	again := fullReset("e2", 1, "127.0.0.1:6379")
	again.Slots[9].BackendAddr = "127.0.0.1:7001"
	re, err := Apply(next, again)
	if err != nil {
		t.Fatal(err)
	}
	if got := Changed(next, re); len(got) != 2 || got[0] != 3 || got[1] != 9 {
		t.Errorf("Changed after reset = %v, want [3 9]", got)
	}
	if re.SlotAt(0) != next.SlotAt(0) || re.SlotAt(9) == next.SlotAt(9) {
		t.Error("reset: an unchanged slot was not kept, or a changed one was")
	}
}

// TestApplyDeltaBytes bounds what a one-slot delta allocates: the table, one
// chunk of 32 pointers and one Slot (≈ 600 bytes), far below a copy of the
// 1024 pointers (8 KB) or of every Slot (≈ 90 KB).
func TestApplyDeltaBytes(t *testing.T) {
	tb, err := Apply(nil, fullReset("e1", 1, "127.0.0.1:6379"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	updates := make([]*topompb.SlotsUpdate, n)
	for i := range updates {
		updates[i] = &topompb.SlotsUpdate{Epoch: "e1", Revision: uint64(i + 2), Slots: []*topompb.Slot{
			{Id: uint32(i), BackendAddr: "127.0.0.1:7000", BackendGroupId: 2}}}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, u := range updates {
		if tb, err = Apply(tb, u); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / n
	// The margin covers other goroutines allocating meanwhile.
	if limit := uint64(SlotCount * 8 / 4); per > limit {
		t.Errorf("a one-slot delta allocated %d bytes, want at most %d", per, limit)
	}
	t.Logf("a one-slot delta allocates %d bytes", per)
}

func BenchmarkApplyDelta(b *testing.B) {
	tb, err := Apply(nil, fullReset("e1", 1, "127.0.0.1:6379"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		u := &topompb.SlotsUpdate{Epoch: "e1", Revision: uint64(i + 2), Slots: []*topompb.Slot{
			{Id: uint32(i % SlotCount), BackendAddr: "127.0.0.1:7000", BackendGroupId: 2}}}
		if tb, err = Apply(tb, u); err != nil {
			b.Fatal(err)
		}
	}
}
