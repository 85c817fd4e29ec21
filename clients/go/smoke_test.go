package topom_test

// Smoke test against a real topom server binary.
//
// The binary comes from $TOPOM_BIN (use an absolute path), else
// <repo>/target/debug/topom (build it with `cargo build --bin topom`). It is
// started as
//
//	topom --listen 127.0.0.1:0 --data-dir <tmp>
//
// and must print "LISTENING 127.0.0.1:<port>" on stdout once it serves, and
// exit 0 on SIGTERM.

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"

	topom "github.com/topom/topom/clients/go"
	"github.com/topom/topom/clients/go/topompb"
)

const (
	slotCount    = 1024
	startTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
	callTimeout  = 30 * time.Second
)

var listeningLine = regexp.MustCompile(`^LISTENING (\S+)$`)

// server is one running topom process.
type server struct {
	addr    string
	cmd     *exec.Cmd
	done    chan struct{} // closed once cmd.Wait has returned
	waitErr error         // cmd.Wait's result, valid after done
	logPath string        // the server's stderr
}

func topomBin(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("TOPOM_BIN"); bin != "" {
		return bin
	}
	// go test runs in the package folder, clients/go.
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatalf("repo root: %v", err)
	}
	return filepath.Join(root, "target", "debug", "topom")
}

// startServer starts topom on an ephemeral loopback port and waits for its
// LISTENING line. The process is killed at the end of the test if still alive.
func startServer(t *testing.T) *server {
	t.Helper()
	bin := topomBin(t)
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		t.Fatalf("topom binary %q not found (build it with `cargo build --bin topom`, or set TOPOM_BIN): %v", bin, err)
	}

	dataDir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "topom.stderr.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child keeps its own descriptor

	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	cmd.Stdin = nil
	cmd.Stdout = stdoutW
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		stdoutR.Close()
		stdoutW.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	stdoutW.Close() // only the child writes now; we see EOF when it exits

	s := &server{cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()

	// Read stdout until EOF; hand over the first LISTENING address, drop the rest.
	addrCh := make(chan string, 1)
	stdoutDone := make(chan []string, 1)
	go func() {
		defer stdoutR.Close()
		var other []string
		sent := false
		sc := bufio.NewScanner(stdoutR)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			if m := listeningLine.FindStringSubmatch(line); m != nil && !sent {
				addrCh <- m[1]
				sent = true
				continue
			}
			if len(other) < 20 {
				other = append(other, line)
			}
		}
		stdoutDone <- other
	}()

	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			s.dumpLog(t)
		}
	})

	select {
	case addr := <-addrCh:
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" || port == "" || port == "0" {
			t.Fatalf("LISTENING line has a bad address %q (want 127.0.0.1:<port>)", addr)
		}
		s.addr = addr
		return s
	case other := <-stdoutDone:
		<-s.done
		t.Fatalf("topom closed stdout without a LISTENING line (exit: %v); other stdout lines: %q", s.waitErr, other)
	case <-time.After(startTimeout):
		t.Fatalf("no LISTENING line on stdout within %s", startTimeout)
	}
	return nil
}

// stop sends SIGTERM and requires a graceful exit with status 0.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		t.Fatalf("topom did not exit within %s of SIGTERM", stopTimeout)
	}
	if s.waitErr != nil {
		var ee *exec.ExitError
		if errors.As(s.waitErr, &ee) {
			t.Fatalf("topom exited badly after SIGTERM: %v (exit code %d, want 0)", ee, ee.ExitCode())
		}
		t.Fatalf("waiting for topom: %v", s.waitErr)
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("topom exit code after SIGTERM = %d, want 0", code)
	}
}

func (s *server) dumpLog(t *testing.T) {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		t.Logf("reading server log: %v", err)
		return
	}
	const max = 8 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	t.Logf("topom stderr (last %d bytes):\n%s", len(b), b)
}

func TestSmoke(t *testing.T) {
	srv := startServer(t)
	t.Logf("topom listening on %s", srv.addr)

	c, err := topom.Dial(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	t.Run("ListSlots", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		resp, err := c.Topom.ListSlots(ctx, &topompb.ListSlotsRequest{})
		if err != nil {
			t.Fatalf("ListSlots: %v", err)
		}
		if n := len(resp.GetMappings()); n != slotCount {
			t.Errorf("ListSlots: %d mappings, want %d", n, slotCount)
		}
		if n := len(resp.GetSlots()); n != slotCount {
			t.Errorf("ListSlots: %d slots, want %d", n, slotCount)
		}
		if resp.GetRevision() < 1 {
			t.Errorf("ListSlots: revision %d, want >= 1", resp.GetRevision())
		}
		if resp.GetEpoch() == "" {
			t.Errorf("ListSlots: empty epoch")
		}
		// Both lists are in slot order.
		for i, m := range resp.GetMappings() {
			if m.GetId() != uint32(i) {
				t.Errorf("ListSlots: mappings[%d].id = %d", i, m.GetId())
				break
			}
		}
		for i, s := range resp.GetSlots() {
			if s.GetId() != uint32(i) {
				t.Errorf("ListSlots: slots[%d].id = %d", i, s.GetId())
				break
			}
		}
	})

	t.Run("ListGroups", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		resp, err := c.Topom.ListGroups(ctx, &topompb.ListGroupsRequest{})
		if err != nil {
			t.Fatalf("ListGroups: %v", err)
		}
		t.Logf("ListGroups: %d groups", len(resp.GetGroups()))
	})

	t.Run("Health", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		resp, err := grpc_health_v1.NewHealthClient(c.Conn()).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: ""})
		if err != nil {
			t.Fatalf("Health/Check: %v", err)
		}
		if got := resp.GetStatus(); got != grpc_health_v1.HealthCheckResponse_SERVING {
			t.Errorf("Health/Check(\"\") = %v, want SERVING", got)
		}
	})

	// Close our connection first so a graceful shutdown has nothing to wait for.
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	srv.stop(t)
}
