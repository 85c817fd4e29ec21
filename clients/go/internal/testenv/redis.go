package testenv

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisStartTimeout bounds how long a redis-server may take to answer PING.
const RedisStartTimeout = 20 * time.Second

// Redis is one running redis-server or redis-sentinel.
type Redis struct {
	*proc
	// Addr is "127.0.0.1:port".
	Addr string
	Port int
	// Dir is its working directory (config, dump files).
	Dir string
}

// RedisBin is $REDIS_SERVER_BIN, else redis-server on $PATH.
func RedisBin(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("REDIS_SERVER_BIN"); bin != "" {
		return bin
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found on PATH (install redis, or set REDIS_SERVER_BIN): %v", err)
	}
	return bin
}

// StartRedis starts a redis-server with no persistence on a free loopback
// port; extra are more config lines ("maxmemory 10mb"). It is killed at the
// end of the test.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	return startRedis(t, "redis-server", RedisBin(t), extra, false)
}

// StartCodisServer starts Codis's codis-server (Redis 3.2 with the slot
// commands) like StartRedis.
func StartCodisServer(t testing.TB, extra ...string) *Redis {
	t.Helper()
	return startRedis(t, "codis-server", CodisBin(t, "codis-server"), extra, false)
}

// CodisBin is the Codis binary name in $CODIS_BIN_DIR, else in
// shared/codis/bin beside the repository (or /work/shared/codis/bin).
func CodisBin(t testing.TB, name string) string {
	t.Helper()
	dirs := []string{os.Getenv("CODIS_BIN_DIR")}
	if root, err := repoRoot(); err == nil {
		dirs = append(dirs, filepath.Join(root, "..", "shared", "codis", "bin"))
	}
	dirs = append(dirs, "/work/shared/codis/bin")
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if bin := filepath.Join(d, name); fileExists(bin) {
			return bin
		}
	}
	t.Fatalf("%s not found in $CODIS_BIN_DIR, ../shared/codis/bin or /work/shared/codis/bin", name)
	return ""
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// StartSentinel starts a redis-sentinel (redis-server --sentinel) monitoring
// nothing yet, on a free loopback port.
func StartSentinel(t testing.TB, extra ...string) *Redis {
	t.Helper()
	return startRedis(t, "redis-sentinel", RedisBin(t), extra, true)
}

func startRedis(t testing.TB, name, bin string, extra []string, sentinel bool) *Redis {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken meanwhile
		dir := t.TempDir()
		port := FreePort(t)
		lines := []string{
			"bind 127.0.0.1",
			"port " + strconv.Itoa(port),
			"dir " + dir,
			"daemonize no",
			"protected-mode no",
		}
		if !sentinel {
			lines = append(lines, `save ""`, "appendonly no")
		}
		lines = append(lines, extra...)
		conf := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{conf}
		if sentinel {
			args = append(args, "--sentinel")
		}
		p, err := start(name, bin, args, dir, filepath.Join(dir, name+".log"), nil)
		if err != nil {
			t.Fatal(err)
		}
		r := &Redis{proc: p, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, Dir: dir}
		if lastErr = r.waitPing(RedisStartTimeout); lastErr == nil {
			p.cleanup(t)
			return r
		}
		lastErr = fmt.Errorf("%w; log:\n%s", lastErr, p.logTail(2<<10))
		p.kill()
	}
	t.Fatalf("starting %s: %v", name, lastErr)
	return nil
}

// waitPing waits until the server answers PING with +PONG.
func (r *Redis) waitPing(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		reply, err := r.Do("PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		if r.Exited() {
			return fmt.Errorf("%s exited: %v", r.name, r.waitErr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG from %s within %s: %v %q", r.Addr, timeout, err, reply)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Do sends one command on a new connection and returns a simple-string,
// error, integer or bulk reply as text (arrays are not decoded). It is for
// test setup and checks, not for speed.
func (r *Redis) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", r.Addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis error: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad bulk header %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return line, nil
	}
}

// Kill sends SIGKILL (kill -9) and waits for the exit.
func (r *Redis) Kill() { r.kill() }
