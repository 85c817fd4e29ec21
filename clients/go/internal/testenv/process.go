// Package testenv starts the real components tests run against — the topom
// binary, redis-server and redis-sentinel — on 127.0.0.1, on free ports, in
// temporary directories, and stops them by pid when the test ends.
package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is one child process whose output goes to a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{} // closed once cmd.Wait has returned
	waitErr error         // valid after done
	logPath string
}

// start runs bin with args, stdout+stderr to logPath (stdout may be given
// separately). The child gets SIGKILL if the test process dies first.
func start(name, bin string, args []string, dir, logPath string, stdout *os.File) (*proc, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child keeps its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = logFile
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (and SIGCONT, in case it was stopped) and waits.
func (p *proc) kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	<-p.done
}

// term sends SIGTERM and waits up to timeout for the exit; it returns the
// exit error (nil for status 0).
func (p *proc) term(timeout time.Duration) error {
	if p.Exited() {
		return fmt.Errorf("%s (pid %d) had already exited: %v", p.name, p.Pid(), p.waitErr)
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot handle SIGTERM
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM %s (pid %d): %w", p.name, p.Pid(), err)
	}
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s (pid %d) did not exit within %s of SIGTERM; killed", p.name, p.Pid(), timeout)
	}
}

// Signal sends sig (e.g. syscall.SIGSTOP, syscall.SIGCONT) to the process.
func (p *proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// logTail returns the last max bytes of the log.
func (p *proc) logTail(max int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.logPath, err)
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// cleanup registers the kill at the end of the test and a log dump on failure.
func (p *proc) cleanup(t testing.TB) {
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s (pid %d) log %s, last 8 KiB:\n%s", p.name, p.Pid(), p.logPath, p.logTail(8<<10))
		}
	})
}

// FreePort returns a loopback TCP port that was free a moment ago. Starting a
// server on it can still race with another process; the Start functions retry.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitFor polls cond every 20 ms until it returns nil or timeout passes, then
// fails the test with what and the last error.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startAnnounced starts bin and waits until a line of its stdout matches
// re (the "LISTENING addr" line servers print once they serve); it returns
// the process, killed at the end of the test, and the submatches.
func startAnnounced(t testing.TB, name, bin string, args []string, dir string, re *regexp.Regexp, timeout time.Duration) (*proc, []string) {
	t.Helper()
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p, err := start(name, bin, args, dir, filepath.Join(dir, name+".log"), stdoutW)
	stdoutW.Close() // only the child writes now; we see EOF when it exits
	if err != nil {
		stdoutR.Close()
		t.Fatal(err)
	}
	p.cleanup(t)

	found := make(chan []string, 1)
	eof := make(chan []string, 1)
	go func() {
		defer stdoutR.Close()
		var other []string
		sent := false
		sc := bufio.NewScanner(stdoutR)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			if m := re.FindStringSubmatch(line); m != nil && !sent {
				found <- m
				sent = true
			} else if len(other) < 20 {
				other = append(other, line)
			}
		}
		eof <- other
	}()
	select {
	case m := <-found:
		return p, m
	case other := <-eof:
		<-p.done
		t.Fatalf("%s %v exited without announcing itself (%v); stdout: %q; log:\n%s", name, args, p.waitErr, other, p.logTail(4<<10))
	case <-time.After(timeout):
		t.Fatalf("%s printed no LISTENING line within %s; log:\n%s", name, timeout, p.logTail(4<<10))
	}
	return nil, nil
}
