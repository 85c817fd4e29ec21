package topom

// Backend returns the master that serves key's slot ("" when the slot is
// offline) and the slot itself.
func (t *Table) Backend(key []byte) (string, *Slot) {
	s := t.Slot(key)
	if s == nil { // only in a table not built by Apply
		return "", nil
	}
	return s.Backend, s
}

// ReadBackend returns where a read for slot should go. With preferReplica
// false, or when the slot has no replica (or is migrating, when topom sends
// none), it is the master. Otherwise it is the first address of the best
// replica bucket (same datacenter and host, then same datacenter, then
// elsewhere), as Codis's proxy does with its replica groups; pick is used to
// choose among the bucket's addresses (nil: the first), so callers can spread
// reads.
func (t *Table) ReadBackend(slot int, preferReplica bool, pick func(n int) int) string {
	if slot < 0 || slot >= SlotCount {
		return ""
	}
	s := t.SlotAt(slot)
	if s == nil {
		return ""
	}
	if !preferReplica || s.Locked || s.Migrating() {
		return s.Backend
	}
	for _, bucket := range s.ReplicaGroups {
		if len(bucket) == 0 {
			continue
		}
		i := 0
		if pick != nil && len(bucket) > 1 {
			i = pick(len(bucket))
			if i < 0 || i >= len(bucket) {
				i = 0
			}
		}
		return bucket[i]
	}
	return s.Backend
}
