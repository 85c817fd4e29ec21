package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/topom/topom/clients/go/internal/testenv"
)

// metric reads one unlabelled series from the proxy's /metrics.
func metric(t *testing.T, p *testenv.Proxy, name string) float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + p.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("series %s not in /metrics", name)
	return 0
}

// expectClosed reads the error reply that ends a session, then EOF.
func expectClosed(t *testing.T, c *testenv.Conn, want string) {
	t.Helper()
	v, err := c.Receive()
	if err != nil {
		t.Fatalf("want the error %q, got %v", want, err)
	}
	if v.Err() != want {
		t.Errorf("got %q, want error %q", v, want)
	}
	if v, err := c.Receive(); err != io.EOF {
		t.Errorf("after the error: got %v %v, want the connection closed", v, err)
	}
}

// Malformed and oversized input ends only the sender's session, at once,
// with an error saying what was wrong.
func TestBadInputEndsOnlyThatSession(t *testing.T) {
	cl := newCluster(t, 2, "")
	p := cl.proxy(t)
	other := dial(t, p.Addr)
	expect(t, other, "OK", "SET", "k", "v")

	for _, tc := range []struct{ in, want string }{
		{"*2\r\n$3\r\nGET\r\n:foo\r\n", `ERR Protocol error: expected '$', got ":foo"`},
		{"*x\r\n", `ERR Protocol error: invalid multibulk length "x" (max 1048576 arguments)`},
		{"*2\r\n$3\r\nGET\r\n$-5\r\n", `ERR Protocol error: invalid bulk length "-5"`},
		{"*1\r\n$3\r\nGETXX\r\n", "ERR Protocol error: bulk of 3 bytes not followed by CRLF"},
		// 512 MB announced, nothing sent: refused before any of it is buffered.
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n", "ERR Protocol error: request larger than 67108864 bytes (bulk of 536870912)"},
		{"*9999999\r\n", `ERR Protocol error: invalid multibulk length "9999999" (max 1048576 arguments)`},
		{"GET " + strings.Repeat("x", 70<<10) + "\r\n", "ERR Protocol error: line longer than 16384 bytes"},
	} {
		c := dial(t, p.Addr)
		if err := c.WriteRaw([]byte(tc.in)); err != nil {
			t.Fatal(err)
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, tc.want)
		expect(t, other, "v", "GET", "k")
	}
	if n := metric(t, p, "topom_proxy_session_protocol_errors_total"); n != 7 {
		t.Errorf("protocol errors counted: %v, want 7", n)
	}
	// Inline commands (redis-cli --pipe, telnet) still work.
	c := dial(t, p.Addr)
	_ = c.WriteRaw([]byte("PING\r\nGET k\r\n"))
	_ = c.Flush()
	for _, want := range []string{"PONG", "v"} {
		if v, err := c.Receive(); err != nil || v.String() != want {
			t.Errorf("inline: got %v %v, want %s", v, err, want)
		}
	}
}

// 100,000 pipelined commands read as they come are all answered, in order,
// across both groups.
func TestHundredThousandPipelinedCommandsKeepTheirOrder(t *testing.T) {
	cl := newCluster(t, 2, "")
	p := cl.proxy(t)
	c := dial(t, p.Addr)
	a, b := keyIn("n:", 0, 512), keyIn("n:", 512, 1024)
	const n = 100_000
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			k := a
			if i%2 == 1 {
				k = b
			}
			if err := c.Send("INCR", k); err != nil {
				errc <- err
				return
			}
		}
		errc <- c.Flush()
	}()
	for i := 0; i < n; i++ {
		v, err := c.Receive()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if want := int64(i/2 + 1); v.Kind != ':' || v.Int != want {
			t.Fatalf("reply %d: got %v, want %d", i, v, want)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// A client that pipelines without reading is not read from once
// MaxPipeline replies wait for it (TCP pushes back), and is disconnected
// after the write timeout; the proxy's memory stays bounded meanwhile.
func TestAPipelineThatIsNeverReadIsBoundedAndDropped(t *testing.T) {
	cl := newCluster(t, 2, "")
	p := cl.proxy(t, "--write-timeout", "3s")
	value := strings.Repeat("v", 4096)
	setup := dial(t, p.Addr)
	expect(t, setup, "OK", "SET", "big", value)

	c := dial(t, p.Addr)
	const n = 100_000
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; i < n; i++ {
			_ = c.Send("GET", "big")
		}
		_ = c.Flush() // fails once the proxy drops the connection
	}()
	// Held replies: at most MaxPipeline (10,000) × 4 KiB ≈ 41 MB, less what
	// the sockets absorb.
	var peak float64
	testenv.WaitFor(t, waitLong, "the proxy to drop the client that does not read", func() error {
		peak = max(peak, metric(t, p, "process_resident_memory_bytes"))
		if n := metric(t, p, "topom_proxy_sessions"); n != 1 {
			return fmt.Errorf("%v sessions open", n)
		}
		return nil
	})
	got := 0
	for {
		v, err := c.Receive()
		if err != nil {
			break // the proxy closed the connection
		}
		if v.Str != value {
			t.Fatalf("reply %d: %.40q", got, v)
		}
		got++
	}
	<-sent
	// Read by the proxy: the pipeline allowance plus what the sockets took
	// in replies, far from all 100,000.
	read := metric(t, p, `topom_proxy_commands_total{command="get"}`)
	if read > 40_000 {
		t.Errorf("the proxy read %.0f of %d requests from a client that read nothing: no backpressure", read, n)
	}
	if peak > 200<<20 {
		t.Errorf("proxy RSS peaked at %.0f MiB while holding a stalled pipeline, want < 200 MiB", peak/(1<<20))
	}
	t.Logf("the proxy read %.0f requests, %d replies had reached the client; proxy RSS peak %.0f MiB", read, got, peak/(1<<20))
	expect(t, setup, "PONG", "PING")
}

// The bytes a session holds are bounded, not only its request count: with
// 64 KiB replies, 5,000 unread GETs are well under --max-pipeline but would
// be 320 MB; the proxy stops reading once 4 MiB are held.
func TestSessionMemoryIsBoundedInBytes(t *testing.T) {
	cl := newCluster(t, 1, "")
	p := cl.proxy(t, "--write-timeout", "3s", "--max-session-mb", "4")
	value := strings.Repeat("v", 64<<10)
	setup := dial(t, p.Addr)
	expect(t, setup, "OK", "SET", "big", value)

	c := dial(t, p.Addr)
	const n = 5000
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; i < n; i++ {
			_ = c.Send("GET", "big")
		}
		_ = c.Flush() // fails once the proxy drops the connection
	}()
	var peak float64
	testenv.WaitFor(t, waitLong, "the proxy to drop the client that does not read", func() error {
		peak = max(peak, metric(t, p, "process_resident_memory_bytes"))
		if n := metric(t, p, "topom_proxy_sessions"); n != 1 {
			return fmt.Errorf("%v sessions open", n)
		}
		return nil
	})
	<-sent
	// Read: 4 MiB of replies (64), what the sockets absorbed, and the GETs
	// of one 16 KiB read buffer (~745) already sent when the bound was hit.
	read := metric(t, p, `topom_proxy_commands_total{command="get"}`)
	if read > 2500 {
		t.Errorf("the proxy read %.0f of %d requests whose replies are 64 KiB each with --max-session-mb 4: the byte bound does not hold", read, n)
	}
	if peak > 250<<20 {
		t.Errorf("proxy RSS peaked at %.0f MiB, want < 250 MiB", peak/(1<<20))
	}
	t.Logf("the proxy read %.0f of %d requests; RSS peak %.0f MiB", read, n, peak/(1<<20))
	expect(t, setup, "PONG", "PING")
}

// A client that drops the connection in the middle of large replies ends
// its session only.
func TestClientDroppingMidReply(t *testing.T) {
	cl := newCluster(t, 2, "")
	p := cl.proxy(t)
	watch := dial(t, p.Addr)
	expect(t, watch, "OK", "SET", "huge", strings.Repeat("h", 16<<20))
	for i := 0; i < 3; i++ {
		c := dial(t, p.Addr)
		for j := 0; j < 4; j++ {
			_ = c.Send("GET", "huge")
		}
		_ = c.Flush()
		buf := make([]byte, 1000)
		if _, err := io.ReadFull(c.NC, buf); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	testenv.WaitFor(t, waitLong, "the dropped sessions to end", func() error {
		if n := metric(t, p, "topom_proxy_sessions"); n != 1 {
			return fmt.Errorf("%v sessions open", n)
		}
		return nil
	})
	if v, err := watch.Do("STRLEN", "huge"); err != nil || v.Int != 16<<20 {
		t.Errorf("STRLEN huge: %v %v", v, err)
	}
}

// A dead backend fails its own requests at once, naming it; the other
// group is served, and replies keep their order.
func TestADeadBackendFailsFastAndNamesItself(t *testing.T) {
	cl := newCluster(t, 2, "")
	p := cl.proxy(t)
	c := dial(t, p.Addr)
	a, b := keyIn("d:", 0, 512), keyIn("d:", 512, 1024)
	expect(t, c, "OK", "SET", a, "1")
	expect(t, c, "OK", "SET", b, "2")
	cl.groups[1].Kill()
	dead := cl.groups[1].Addr
	for i := 0; i < 3; i++ {
		start := time.Now()
		v, err := c.Do("GET", b)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(v.Err(), "ERR backend "+dead+": ") {
			t.Errorf("GET on the dead group: got %q, want an error naming %s", v, dead)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("the error took %s", d)
		}
		expect(t, c, "1", "GET", a)
	}
	// Pipelined over both groups: errors and values in request order.
	for i := 0; i < 10; i++ {
		_ = c.Send("GET", a)
		_ = c.Send("GET", b)
	}
	_ = c.Flush()
	for i := 0; i < 10; i++ {
		if v, err := c.Receive(); err != nil || v.String() != "1" {
			t.Fatalf("pipelined GET %s: %v %v", a, v, err)
		}
		if v, err := c.Receive(); err != nil || !strings.Contains(v.Err(), dead) {
			t.Fatalf("pipelined GET %s: %v %v", b, v, err)
		}
	}
	expect(t, c, "OK", "MSET", a, "x", keyIn("e:", 0, 512), "y")
	if v := do(t, c, "MGET", a, b); !strings.Contains(v, dead) {
		t.Errorf("MGET over a dead group: %q", v)
	}
}
