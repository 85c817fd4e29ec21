package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// EtcdStartTimeout bounds how long one etcd start may take to answer.
const EtcdStartTimeout = 20 * time.Second

// Etcd is one running single-member etcd.
type Etcd struct {
	*proc
	// Endpoint is its client URL, "http://127.0.0.1:port".
	Endpoint string
	// name is the member name, unique per start, so that another test's etcd
	// that took the same port is not mistaken for ours.
	name string
}

// EtcdBin is $TOPOM_TEST_ETCD, else etcd on $PATH.
func EtcdBin(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("TOPOM_TEST_ETCD"); bin != "" {
		return bin
	}
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd not found on PATH (install etcd-server, or set TOPOM_TEST_ETCD): %v", err)
	}
	return bin
}

// StartEtcd starts a fresh single-member etcd on free loopback ports in a
// temp dir and waits until it answers as itself. It is killed at the end of
// the test.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	bin := EtcdBin(t)
	var failures []string
	for attempt := 1; attempt <= 3; attempt++ { // a free port can be taken meanwhile
		dir := t.TempDir()
		clientPort, peerPort := FreePort(t), FreePort(t)
		name := fmt.Sprintf("topom-go-test-%d-%d", os.Getpid(), clientPort)
		clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
		peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
		args := []string{
			"--name", name,
			"--data-dir", filepath.Join(dir, "data"),
			"--logger=zap", "--log-level=warn", "--log-outputs=stderr",
			"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", name + "=" + peerURL,
		}
		p, err := start("etcd", bin, args, dir, filepath.Join(dir, "etcd.log"), nil)
		if err != nil {
			t.Fatal(err)
		}
		e := &Etcd{proc: p, Endpoint: clientURL, name: name}
		err = e.waitReady(EtcdStartTimeout)
		if err == nil {
			p.cleanup(t)
			return e
		}
		failures = append(failures, fmt.Sprintf("attempt %d on ports %d/%d: %v; log:\n%s", attempt, clientPort, peerPort, err, p.logTail(2<<10)))
		p.kill()
	}
	t.Fatalf("etcd did not start:\n%s", strings.Join(failures, "\n"))
	return nil
}

// waitReady polls the member list (etcd's JSON gateway) until it names this
// member.
func (e *Etcd) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := fmt.Errorf("no answer yet")
	for time.Now().Before(deadline) {
		if e.Exited() {
			return fmt.Errorf("etcd exited: %v", e.waitErr)
		}
		names, err := e.memberNames()
		switch {
		case err != nil:
			last = err
		case len(names) == 1 && names[0] == e.name:
			return nil
		default:
			return fmt.Errorf("%s is served by members %v, not %s", e.Endpoint, names, e.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %v", timeout, last)
}

func (e *Etcd) memberNames() ([]string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Post(e.Endpoint+"/v3/cluster/member/list", "application/json", strings.NewReader("{}"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("member list: HTTP %d", resp.StatusCode)
	}
	var body struct {
		Members []struct {
			Name string `json:"name"`
		} `json:"members"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("member list: %w", err)
	}
	var names []string
	for _, m := range body.Members {
		names = append(names, m.Name)
	}
	return names, nil
}

// Pause freezes etcd with SIGSTOP (like a partition: sockets stay open,
// nothing answers); Resume continues it.
func (e *Etcd) Pause() error { return e.Signal(syscall.SIGSTOP) }

// Resume sends SIGCONT.
func (e *Etcd) Resume() error { return e.Signal(syscall.SIGCONT) }
