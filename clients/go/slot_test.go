package topom

import (
	"bufio"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestSlotVectors checks SlotOf against testdata/slot_vectors.txt, the file
// the Rust test tests/slot_vectors.rs checks topom's slot_of against.
func TestSlotVectors(t *testing.T) {
	f, err := os.Open("testdata/slot_vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		keyHex, slotText, ok := strings.Cut(text, " ")
		if !ok {
			t.Fatalf("line %d: want `<hex key> <slot>`", line)
		}
		if keyHex == "-" {
			keyHex = ""
		}
		key, err := hex.DecodeString(keyHex)
		if err != nil {
			t.Fatalf("line %d: key: %v", line, err)
		}
		want, err := strconv.Atoi(slotText)
		if err != nil {
			t.Fatalf("line %d: slot: %v", line, err)
		}
		if got := SlotOf(key); got != want {
			t.Errorf("line %d: SlotOf(%q) = %d, want %d", line, trim(key), got, want)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("only %d vectors read", n)
	}
}

func trim(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

func TestHashTag(t *testing.T) {
	for _, c := range []struct{ key, tag string }{
		{"foo", "foo"}, {"{user1}.name", "user1"}, {"a{b}c{d}", "b"}, {"a{}b", ""},
		{"a{b", "a{b"}, {"a}b{c}", "c"}, {"}{", "}{"}, {"", ""},
	} {
		if got := string(HashTag([]byte(c.key))); got != c.tag {
			t.Errorf("HashTag(%q) = %q, want %q", c.key, got, c.tag)
		}
	}
}
