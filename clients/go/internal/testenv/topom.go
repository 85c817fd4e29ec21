package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// Timeouts for starting and stopping topom on a slow, loaded machine.
const (
	TopomStartTimeout = 30 * time.Second
	TopomStopTimeout  = 30 * time.Second
)

var listeningLine = regexp.MustCompile(`^LISTENING (\S+)$`)

// TopomBin is $TOPOM_BIN, else <repo>/target/debug/topom. It fails the test
// when the file is missing.
func TopomBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("TOPOM_BIN")
	if bin == "" {
		root, err := repoRoot()
		if err != nil {
			t.Fatalf("locating the repository root: %v", err)
		}
		bin = filepath.Join(root, "target", "debug", "topom")
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		t.Fatalf("topom binary %q not found (build it with `cargo build --bin topom`, or set TOPOM_BIN to an absolute path): %v", bin, err)
	}
	return bin
}

// repoRoot walks up from the working directory to the folder holding Cargo.toml.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "Cargo.toml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no Cargo.toml above the working directory")
		}
		dir = parent
	}
}

// TopomOptions configure StartTopom; the zero value is a fresh topom with
// default settings.
type TopomOptions struct {
	// DataDir is the embedded store's directory; empty: a new temp dir.
	// Unused with Etcd.
	DataDir string
	// Etcd, when set, is the etcd endpoint list (--etcd) used as the store
	// instead of a data dir; several topom processes may share it.
	Etcd string
	// Listen is the address to listen on; empty: 127.0.0.1:0.
	Listen string
	// Config is TOML text written to a file and passed with --config, e.g.
	// `proxy_lease_ttl = "2s"`.
	Config string
	// AdminToken, when set, is passed with --admin-token.
	AdminToken string
	// Args are extra command-line arguments.
	Args []string
}

// Topom is one running topom process.
type Topom struct {
	*proc
	// Addr is the "127.0.0.1:port" it serves gRPC on.
	Addr string
	// Opts are the options it was started with (DataDir and Listen filled in).
	Opts TopomOptions
	t    testing.TB
}

// StartTopom starts topom and waits for its LISTENING line. It is killed at
// the end of the test if still running.
func StartTopom(t testing.TB, opts TopomOptions) *Topom {
	t.Helper()
	bin := TopomBin(t)
	tmp := t.TempDir()
	if opts.DataDir == "" && opts.Etcd == "" {
		opts.DataDir = filepath.Join(tmp, "data")
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	args := []string{"--listen", opts.Listen}
	if opts.Etcd != "" {
		args = append(args, "--etcd", opts.Etcd)
	} else {
		args = append(args, "--data-dir", opts.DataDir)
	}
	if opts.Config != "" {
		path := filepath.Join(tmp, "topom.toml")
		if err := os.WriteFile(path, []byte(opts.Config), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	if opts.AdminToken != "" {
		args = append(args, "--admin-token", opts.AdminToken)
	}
	args = append(args, opts.Args...)

	p, m := startAnnounced(t, "topom", bin, args, tmp, listeningLine, TopomStartTimeout)
	if _, port, err := net.SplitHostPort(m[1]); err != nil || port == "0" {
		t.Fatalf("topom printed a bad LISTENING address %q", m[1])
	}
	return &Topom{proc: p, Addr: m[1], Opts: opts, t: t}
}

// Stop sends SIGTERM and fails the test unless topom exits with status 0.
func (s *Topom) Stop(t testing.TB) {
	t.Helper()
	if err := s.term(TopomStopTimeout); err != nil {
		t.Fatalf("stopping topom: %v; log:\n%s", err, s.logTail(4<<10))
	}
}

// Restart stops topom (SIGTERM, exit 0) and starts it again on the same
// address with the same data dir and options.
func (s *Topom) Restart(t testing.TB) *Topom {
	t.Helper()
	s.Stop(t)
	opts := s.Opts
	opts.Listen = s.Addr
	return StartTopom(t, opts)
}

// Kill sends SIGKILL (kill -9, a crash) and waits for the exit.
func (s *Topom) Kill() { s.kill() }

// Pause stops the process with SIGSTOP (it keeps its sockets but answers
// nothing); Resume continues it.
func (s *Topom) Pause(t testing.TB) {
	t.Helper()
	if err := s.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP topom: %v", err)
	}
}

// Resume sends SIGCONT.
func (s *Topom) Resume(t testing.TB) {
	t.Helper()
	if err := s.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT topom: %v", err)
	}
}
