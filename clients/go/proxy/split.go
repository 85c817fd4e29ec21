package proxy

import (
	"sync"

	topom "github.com/topom/topom/clients/go"
)

// split serves MGET, MSET, DEL, EXISTS, UNLINK and TOUCH whose keys span
// several slots: one sub-command per slot, merged in argument order.
func (s *session) split(r *request, c *command, args [][]byte, raw []byte) {
	step := 1
	if c.name == "mset" {
		step = 2
	}
	if len(args) < 2 || (len(args)-1)%step != 0 {
		s.fail(r, "ERR wrong number of arguments for '"+c.name+"' command")
		return
	}
	nkeys := (len(args) - 1) / step
	slots := make([]int, nkeys)
	order := make([]int, 0, 4) // distinct slots in first-seen order
	seen := map[int]int{}
	for i := 0; i < nkeys; i++ {
		sl := topom.SlotOf(args[1+i*step])
		slots[i] = sl
		if _, ok := seen[sl]; !ok {
			seen[sl] = len(order)
			order = append(order, sl)
		}
	}
	if len(order) == 1 {
		keys := make([][]byte, nkeys)
		for i := range keys {
			keys[i] = args[1+i*step]
		}
		s.forward(order[0], raw, keys, func(reply []byte) { s.finishCounted(r, reply) })
		return
	}
	// Group key indexes by slot.
	groups := make([][]int, len(order))
	for i, sl := range slots {
		g := seen[sl]
		groups[g] = append(groups[g], i)
	}
	replies := make([][]byte, len(order))
	var mu sync.Mutex
	left := len(order)
	merge := func() {
		s.finishCounted(r, mergeSplit(c.name, nkeys, groups, replies))
	}
	for g, idx := range groups {
		sub := make([][]byte, 0, 1+len(idx)*step)
		sub = append(sub, args[0])
		keys := make([][]byte, 0, len(idx))
		for _, i := range idx {
			sub = append(sub, args[1+i*step:1+i*step+step]...)
			keys = append(keys, args[1+i*step])
		}
		g := g
		s.forward(order[g], encodeCommand(sub), keys, func(reply []byte) {
			mu.Lock()
			replies[g] = reply
			left--
			last := left == 0
			mu.Unlock()
			if last {
				merge()
			}
		})
	}
}

func mergeSplit(name string, nkeys int, groups [][]int, replies [][]byte) []byte {
	for _, rep := range replies {
		if len(rep) > 0 && rep[0] == '-' {
			return rep
		}
	}
	switch name {
	case "mset":
		return replyOK
	case "mget":
		elems := make([][]byte, nkeys)
		for g, rep := range replies {
			pr, _, err := parseReply(rep)
			if err != nil || pr.kind != '*' || len(pr.elems) != len(groups[g]) {
				return replyError("ERR malformed MGET reply from a backend")
			}
			for j, i := range groups[g] {
				elems[i] = pr.elems[j]
			}
		}
		out := append([]byte("*"), itoa(nkeys)...)
		out = append(out, '\r', '\n')
		for _, e := range elems {
			out = append(out, e...)
		}
		return out
	default: // integer sums
		var sum int64
		for _, rep := range replies {
			pr, _, err := parseReply(rep)
			if err != nil || pr.kind != ':' {
				return replyError("ERR malformed " + upper(name) + " reply from a backend")
			}
			sum += pr.n
		}
		return replyInt(sum)
	}
}
