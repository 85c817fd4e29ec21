package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ProtocolError is a malformed or oversized request. The session answers it
// with "-ERR Protocol error: ..." and closes, as redis-server does.
type ProtocolError struct{ msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.msg }

func protoErrorf(format string, a ...any) error {
	return &ProtocolError{msg: fmt.Sprintf(format, a...)}
}

// Limits bound what one request may make the proxy hold in memory.
type Limits struct {
	// MaxRequestBytes bounds one request frame (all its arguments together).
	MaxRequestBytes int
	// MaxArgs bounds the number of arguments of one request.
	MaxArgs int
}

// requestReader decodes client requests: RESP arrays of bulk strings, or
// inline commands (space separated, as redis-cli --pipe or telnet send).
//
// Memory is bounded by Limits: the frame buffer grows only as bytes arrive,
// so a header announcing 512 MB costs nothing until 512 MB are really sent,
// and is refused at once if it exceeds MaxRequestBytes.
type requestReader struct {
	br     *bufio.Reader
	limits Limits
	offs   []int // scratch: argument offsets in the frame being read
}

func newRequestReader(r io.Reader, limits Limits) *requestReader {
	return &requestReader{br: bufio.NewReaderSize(r, 16<<10), limits: limits}
}

// Buffered reports whether more input is already read, so the session can
// keep decoding without waiting (and batch its backend writes).
func (rr *requestReader) Buffered() int { return rr.br.Buffered() }

// readLine returns one CRLF-terminated line without the CRLF. The slice is
// valid until the next read.
func (rr *requestReader) readLine(max int) ([]byte, error) {
	line, err := rr.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, protoErrorf("line longer than %d bytes", rr.br.Size())
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(line) > max {
		return nil, protoErrorf("line longer than %d bytes", max)
	}
	n := len(line) - 1
	if n > 0 && line[n-1] == '\r' {
		n--
	}
	return line[:n], nil
}

// ReadRequest returns the next request's arguments and its raw RESP frame.
// Both share one buffer owned by the caller afterwards.
func (rr *requestReader) ReadRequest() (args [][]byte, raw []byte, err error) {
	return rr.ReadRequestInto(nil, nil)
}

// ReadRequestInto is ReadRequest reusing the storage of raw and args (both
// may be nil), so that a session recycling its requests reads a pipeline
// without allocating.
func (rr *requestReader) ReadRequestInto(raw []byte, args [][]byte) ([][]byte, []byte, error) {
	for {
		b, err := rr.br.Peek(1)
		if err != nil {
			return nil, nil, err
		}
		if b[0] != '*' {
			args, raw, err = rr.readInline()
			if err != nil || len(args) > 0 {
				return args, raw, err
			}
			continue // empty line: ignore, like redis
		}
		return rr.readMultiBulk(raw[:0], args[:0])
	}
}

func (rr *requestReader) readMultiBulk(raw []byte, args [][]byte) ([][]byte, []byte, error) {
	line, err := rr.readLine(64)
	if err != nil {
		return nil, nil, err
	}
	n, ok := parseInt(line[1:])
	if !ok || n > int64(rr.limits.MaxArgs) {
		return nil, nil, protoErrorf("invalid multibulk length %q (max %d arguments)", line[1:], rr.limits.MaxArgs)
	}
	if n <= 0 {
		return nil, nil, nil
	}
	// The frame is copied as it is read; capacity grows with real input.
	if raw == nil {
		raw = make([]byte, 0, 64)
	}
	raw = append(raw, line...)
	raw = append(raw, '\r', '\n')
	offs := rr.offs[:0]
	defer func() { rr.offs = offs[:0] }()
	for i := int64(0); i < n; i++ {
		h, err := rr.readLine(64)
		if err != nil {
			return nil, nil, unexpected(err)
		}
		if len(h) == 0 || h[0] != '$' {
			return nil, nil, protoErrorf("expected '$', got %q", printable(h))
		}
		size, ok := parseInt(h[1:])
		if !ok || size < 0 {
			return nil, nil, protoErrorf("invalid bulk length %q", h[1:])
		}
		if int64(len(raw))+size > int64(rr.limits.MaxRequestBytes) {
			return nil, nil, protoErrorf("request larger than %d bytes (bulk of %d)", rr.limits.MaxRequestBytes, size)
		}
		raw = append(raw, h...)
		raw = append(raw, '\r', '\n')
		start := len(raw)
		raw, err = readN(rr.br, raw, int(size)+2)
		if err != nil {
			return nil, nil, unexpected(err)
		}
		if raw[len(raw)-2] != '\r' || raw[len(raw)-1] != '\n' {
			return nil, nil, protoErrorf("bulk of %d bytes not followed by CRLF", size)
		}
		offs = append(offs, start, start+int(size))
	}
	for i := 0; i < int(n); i++ {
		args = append(args, raw[offs[2*i]:offs[2*i+1]:offs[2*i+1]])
	}
	return args, raw, nil
}

// readN appends exactly n bytes from br to dst, growing dst in steps no
// larger than what has arrived.
func readN(br *bufio.Reader, dst []byte, n int) ([]byte, error) {
	for n > 0 {
		chunk := n
		if chunk > 64<<10 {
			chunk = 64 << 10
		}
		start := len(dst)
		dst = append(dst, make([]byte, chunk)...)
		m, err := io.ReadFull(br, dst[start:])
		dst = dst[:start+m]
		if err != nil {
			return dst, err
		}
		n -= chunk
	}
	return dst, nil
}

func (rr *requestReader) readInline() ([][]byte, []byte, error) {
	line, err := rr.readLine(64 << 10)
	if err != nil {
		return nil, nil, err
	}
	var args [][]byte
	for i := 0; i < len(line); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		if j > i {
			if line[i] == '"' || line[i] == '\'' {
				return nil, nil, protoErrorf("quoted inline arguments are not supported; send RESP arrays")
			}
			args = append(args, append([]byte(nil), line[i:j]...))
		}
		i = j
	}
	if len(args) > rr.limits.MaxArgs {
		return nil, nil, protoErrorf("too many inline arguments")
	}
	if len(args) == 0 {
		return nil, nil, nil
	}
	return args, encodeCommand(args), nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func printable(b []byte) string {
	if len(b) > 32 {
		b = b[:32]
	}
	return string(b)
}

func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	neg := false
	if b[0] == '-' {
		neg = true
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// encodeCommand encodes args as a RESP array of bulk strings.
func encodeCommand(args [][]byte) []byte {
	size := 16
	for _, a := range args {
		size += len(a) + 16
	}
	b := make([]byte, 0, size)
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

func encodeStrings(args ...string) []byte {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	return encodeCommand(bs)
}

// Reply encoders.

func replyError(msg string) []byte { return []byte("-" + msg + "\r\n") }
func replyStatus(s string) []byte  { return []byte("+" + s + "\r\n") }
func replyInt(n int64) []byte {
	b := append([]byte(":"), strconv.FormatInt(n, 10)...)
	return append(b, '\r', '\n')
}
func replyBulk(s []byte) []byte {
	if s == nil {
		return []byte("$-1\r\n")
	}
	b := append([]byte("$"), strconv.Itoa(len(s))...)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

var (
	replyOK   = []byte("+OK\r\n")
	replyPong = []byte("+PONG\r\n")
)

// replyReader splits a backend's reply stream into whole replies.
type replyReader struct {
	br *bufio.Reader
}

var errBadReply = errors.New("malformed reply from backend")

// ReadReply returns one complete reply as a fresh copy of its raw bytes.
func (r *replyReader) ReadReply() ([]byte, error) {
	var out []byte
	out, err := r.appendReply(out, 0)
	return out, err
}

func (r *replyReader) appendReply(out []byte, depth int) ([]byte, error) {
	if depth > 64 {
		return nil, errBadReply
	}
	line, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// A status or error longer than the buffer: keep reading it.
		out = append(out, line...)
		for err == bufio.ErrBufferFull {
			line, err = r.br.ReadSlice('\n')
			out = append(out, line...)
		}
		return out, err
	}
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, errBadReply
	}
	out = append(out, line...)
	switch line[0] {
	case '+', '-', ':':
		return out, nil
	case '$':
		n, ok := parseInt(line[1 : len(line)-2])
		if !ok {
			return nil, errBadReply
		}
		if n < 0 {
			return out, nil
		}
		return readN(r.br, out, int(n)+2)
	case '*':
		n, ok := parseInt(line[1 : len(line)-2])
		if !ok {
			return nil, errBadReply
		}
		for i := int64(0); i < n; i++ {
			if out, err = r.appendReply(out, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, errBadReply
}

// splitReply parses one complete raw reply: its type byte, the header value
// (integer, length, or text) and, for arrays, the raw elements.
type parsedReply struct {
	kind  byte
	text  []byte   // status/error text, bulk body (nil for a null bulk)
	n     int64    // integer value, or array length (-1: null)
	elems [][]byte // raw elements of an array
}

func parseReply(b []byte) (parsedReply, []byte, error) {
	var p parsedReply
	i := indexCRLF(b)
	if i < 1 {
		return p, nil, errBadReply
	}
	p.kind = b[0]
	head := b[1:i]
	rest := b[i+2:]
	switch p.kind {
	case '+', '-':
		p.text = head
		return p, rest, nil
	case ':':
		n, ok := parseInt(head)
		if !ok {
			return p, nil, errBadReply
		}
		p.n = n
		return p, rest, nil
	case '$':
		n, ok := parseInt(head)
		if !ok {
			return p, nil, errBadReply
		}
		p.n = n
		if n < 0 {
			return p, rest, nil
		}
		if int64(len(rest)) < n+2 {
			return p, nil, errBadReply
		}
		p.text = rest[:n]
		return p, rest[n+2:], nil
	case '*':
		n, ok := parseInt(head)
		if !ok {
			return p, nil, errBadReply
		}
		p.n = n
		for j := int64(0); j < n; j++ {
			start := rest
			_, next, err := parseReply(rest)
			if err != nil {
				return p, nil, err
			}
			p.elems = append(p.elems, start[:len(start)-len(next)])
			rest = next
		}
		return p, rest, nil
	}
	return p, nil, errBadReply
}

func indexCRLF(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' {
			return i
		}
	}
	return -1
}
