package proxy

import (
	"errors"
	"fmt"
	"strings"
)

// value is a decoded reply, used only on the control path (COMMAND, INFO).
type value struct {
	kind byte // '+', '-', ':', '$', '*'
	str  string
	n    int64
	arr  []value
}

func decodeValue(raw []byte) (value, error) {
	p, _, err := parseReply(raw)
	if err != nil {
		return value{}, err
	}
	v := value{kind: p.kind, str: string(p.text), n: p.n}
	for _, e := range p.elems {
		ev, err := decodeValue(e)
		if err != nil {
			return value{}, err
		}
		v.arr = append(v.arr, ev)
	}
	return v, nil
}

// field returns the value after key in a flat RESP2 map.
func (v value) field(key string) (value, bool) {
	for i := 0; i+1 < len(v.arr); i += 2 {
		if strings.EqualFold(v.arr[i].str, key) {
			return v.arr[i+1], true
		}
	}
	return value{}, false
}

func (v value) num(key string) int {
	f, _ := v.field(key)
	return int(f.n)
}

// learnCommands builds a command table from a COMMAND reply. Redis 7 key
// specs are used when present; older servers give first/last/step, and
// commands with movable keys then come from the static table.
func learnCommands(raw []byte) (*commandTable, error) {
	v, err := decodeValue(raw)
	if err != nil {
		return nil, err
	}
	if v.kind != '*' || len(v.arr) == 0 {
		return nil, errors.New("COMMAND: not an array")
	}
	cmds := map[string]*command{}
	for _, e := range v.arr {
		c, err := learnOne(e)
		if err != nil {
			return nil, err
		}
		if c != nil {
			cmds[c.name] = c
		}
	}
	// Movable-key commands of servers without key specs.
	for name, s := range movable {
		if c, ok := cmds[name]; ok && len(c.specs) == 0 {
			c.specs = []keySpec{s}
			if name == "zunionstore" || name == "zinterstore" {
				c.specs = append(c.specs, keySpec{index: 2, numIdx: 0, first: 1, step: 1, keynum: true})
			}
		}
	}
	return finish(cmds), nil
}

func learnOne(e value) (*command, error) {
	if len(e.arr) < 6 {
		return nil, fmt.Errorf("COMMAND entry with %d fields", len(e.arr))
	}
	c := &command{name: strings.ToLower(e.arr[0].str)}
	movableKeys := false
	for _, f := range e.arr[2].arr {
		switch f.str {
		case "write":
			c.write = true
		case "readonly":
			c.readonly = true
		case "movablekeys":
			movableKeys = true
		}
	}
	first, last, step := int(e.arr[3].n), int(e.arr[4].n), int(e.arr[5].n)
	if len(e.arr) >= 9 && len(e.arr[8].arr) > 0 {
		for _, ks := range e.arr[8].arr {
			s, ok := learnSpec(ks)
			if ok {
				c.specs = append(c.specs, s)
			}
		}
	} else if first > 0 && !movableKeys {
		c.specs = []keySpec{tripleSpec(first, last, step)}
	} else if first > 0 {
		c.specs = []keySpec{tripleSpec(first, last, step)}
		if _, ok := movable[c.name]; ok {
			c.specs = nil // filled from the static table
		}
	}
	if len(e.arr) >= 10 && len(e.arr[9].arr) > 0 {
		c.subs = map[string]*command{}
		for _, se := range e.arr[9].arr {
			sc, err := learnOne(se)
			if err != nil {
				return nil, err
			}
			c.subs[sc.name] = sc
		}
	}
	return c, nil
}

func learnSpec(ks value) (keySpec, bool) {
	var s keySpec
	bs, ok := ks.field("begin_search")
	if !ok {
		return s, false
	}
	bt, _ := bs.field("type")
	bspec, _ := bs.field("spec")
	switch bt.str {
	case "index":
		s.index = bspec.num("index")
	case "keyword":
		kw, _ := bspec.field("keyword")
		s.keyword = strings.ToUpper(kw.str)
		s.from = bspec.num("startfrom")
	default:
		return s, false // "unknown": handled per command (SORT STORE)
	}
	fk, _ := ks.field("find_keys")
	ft, _ := fk.field("type")
	fspec, _ := fk.field("spec")
	switch ft.str {
	case "range":
		s.lastKey = fspec.num("lastkey")
		s.step = fspec.num("keystep")
		s.limit = fspec.num("limit")
	case "keynum":
		s.keynum = true
		s.numIdx = fspec.num("keynumidx")
		s.first = fspec.num("firstkey")
		s.step = fspec.num("keystep")
	default:
		return s, false
	}
	return s, true
}
