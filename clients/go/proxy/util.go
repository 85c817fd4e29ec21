package proxy

import (
	"bytes"
	"io"
	"strconv"
	"strings"
)

func itoa(n int) string              { return strconv.Itoa(n) }
func upper(s string) string          { return strings.ToUpper(s) }
func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func hasWord(args [][]byte, w string) bool {
	for _, a := range args[1:] {
		if strings.EqualFold(string(a), w) {
			return true
		}
	}
	return false
}
