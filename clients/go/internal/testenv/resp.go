package testenv

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Value is one decoded RESP2 reply.
type Value struct {
	Kind byte   // '+', '-', ':', '$', '*'
	Str  string // status, error text or bulk body
	Int  int64  // integer
	Arr  []Value
	Null bool // $-1 or *-1
}

// Err is the error text of an error reply, "" otherwise.
func (v Value) Err() string {
	if v.Kind == '-' {
		return v.Str
	}
	return ""
}

// String renders v compactly for test messages.
func (v Value) String() string {
	switch {
	case v.Null:
		return "(nil)"
	case v.Kind == ':':
		return strconv.FormatInt(v.Int, 10)
	case v.Kind == '-':
		return "(error) " + v.Str
	case v.Kind == '*':
		parts := make([]string, len(v.Arr))
		for i, e := range v.Arr {
			parts[i] = e.String()
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return v.Str
}

// Conn is a small pipelining RESP client for tests.
type Conn struct {
	NC net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// Dial connects to addr; every read and write has a 30 s deadline.
func Dial(addr string) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &Conn{NC: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.NC.Close() }

// Send buffers one command.
func (c *Conn) Send(args ...string) error {
	_ = c.NC.SetWriteDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c.bw, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.bw, "$%d\r\n", len(a))
		c.bw.WriteString(a)
		c.bw.WriteString("\r\n")
	}
	return nil
}

// WriteRaw buffers raw bytes (for malformed input).
func (c *Conn) WriteRaw(b []byte) error {
	_, err := c.bw.Write(b)
	return err
}

// Flush writes what Send buffered.
func (c *Conn) Flush() error {
	_ = c.NC.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return c.bw.Flush()
}

// Receive reads one reply.
func (c *Conn) Receive() (Value, error) {
	_ = c.NC.SetReadDeadline(time.Now().Add(30 * time.Second))
	return readValue(c.br)
}

// Do sends one command and reads its reply. An error reply is a Value with
// Kind '-', not a Go error; the error is for I/O and protocol failures.
func (c *Conn) Do(args ...string) (Value, error) {
	if err := c.Send(args...); err != nil {
		return Value{}, err
	}
	if err := c.Flush(); err != nil {
		return Value{}, err
	}
	return c.Receive()
}

func readValue(br *bufio.Reader) (Value, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return Value{}, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return Value{}, fmt.Errorf("empty reply line")
	}
	v := Value{Kind: line[0]}
	body := line[1:]
	switch v.Kind {
	case '+', '-':
		v.Str = body
	case ':':
		v.Int, err = strconv.ParseInt(body, 10, 64)
	case '$':
		n, perr := strconv.Atoi(body)
		if perr != nil {
			return v, fmt.Errorf("bad bulk header %q", line)
		}
		if n < 0 {
			v.Null = true
			return v, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return v, err
		}
		v.Str = string(buf[:n])
	case '*':
		n, perr := strconv.Atoi(body)
		if perr != nil {
			return v, fmt.Errorf("bad array header %q", line)
		}
		if n < 0 {
			v.Null = true
			return v, nil
		}
		for i := 0; i < n; i++ {
			e, err := readValue(br)
			if err != nil {
				return v, err
			}
			v.Arr = append(v.Arr, e)
		}
	default:
		return v, fmt.Errorf("unknown reply type %q", line)
	}
	return v, err
}
