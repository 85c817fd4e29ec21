package testenv

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ProxyStartTimeout bounds how long topom-proxy takes to print its addresses.
const ProxyStartTimeout = 30 * time.Second

var (
	proxyLine     = regexp.MustCompile(`^LISTENING (\S+) ADMIN (\S+)$`)
	proxyBuild    sync.Once
	proxyBin      string
	proxyBuildErr error
)

// ProxyBin is $TOPOM_PROXY_BIN, else topom-proxy built once per test
// process from this module (cmd/topom-proxy) into a temporary directory.
func ProxyBin(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("TOPOM_PROXY_BIN"); bin != "" {
		return bin
	}
	proxyBuild.Do(func() {
		root, err := repoRoot()
		if err != nil {
			proxyBuildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "topom-proxy-bin-")
		if err != nil {
			proxyBuildErr = err
			return
		}
		proxyBin = filepath.Join(dir, "topom-proxy")
		cmd := exec.Command("go", "build", "-o", proxyBin, "./cmd/topom-proxy")
		cmd.Dir = filepath.Join(root, "clients", "go")
		if out, err := cmd.CombinedOutput(); err != nil {
			proxyBuildErr = fmt.Errorf("go build ./cmd/topom-proxy: %v\n%s", err, out)
		}
	})
	if proxyBuildErr != nil {
		t.Fatal(proxyBuildErr)
	}
	return proxyBin
}

// Proxy is one running topom-proxy process.
type Proxy struct {
	*proc
	// Addr is the RESP address, Admin the HTTP admin address.
	Addr, Admin string
}

// StartProxy starts topom-proxy following topomAddr, on free loopback
// ports; extra are more flags. It is killed at the end of the test.
func StartProxy(t testing.TB, topomAddr string, extra ...string) *Proxy {
	t.Helper()
	return StartProxyBin(t, ProxyBin(t), topomAddr, extra...)
}

// StartProxyBin is StartProxy with another topom-proxy binary (a benchmark
// compares two builds in one run).
func StartProxyBin(t testing.TB, bin, topomAddr string, extra ...string) *Proxy {
	t.Helper()
	args := append([]string{"--topom", topomAddr, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}, extra...)
	p, m := startAnnounced(t, "topom-proxy", bin, args, t.TempDir(), proxyLine, ProxyStartTimeout)
	return &Proxy{proc: p, Addr: m[1], Admin: m[2]}
}

// Healthz returns the status code and body of /healthz.
func (p *Proxy) Healthz() (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.Admin + "/healthz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b := make([]byte, 512)
	n, _ := resp.Body.Read(b)
	return resp.StatusCode, string(b[:n]), nil
}

// WaitReady waits until /healthz answers 200.
func (p *Proxy) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, "topom-proxy "+p.Addr+" to be ready", func() error {
		code, body, err := p.Healthz()
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/healthz %d %s", code, body)
		}
		return nil
	})
}

// Term sends SIGTERM and returns the exit error (nil for status 0).
func (p *Proxy) Term(timeout time.Duration) error { return p.term(timeout) }

// Kill sends SIGKILL and waits.
func (p *Proxy) Kill() { p.kill() }

// Stop and Cont send SIGSTOP and SIGCONT.
func (p *Proxy) Stop() error { return p.Signal(syscall.SIGSTOP) }

// Cont sends SIGCONT.
func (p *Proxy) Cont() error { return p.Signal(syscall.SIGCONT) }

// Log returns the last max bytes of the proxy's log.
func (p *Proxy) Log(max int) string { return p.logTail(max) }
