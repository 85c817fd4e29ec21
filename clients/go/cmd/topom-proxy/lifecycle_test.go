package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

// Registration carries the proxy's addresses and identity, read back from
// topom; settings may come from a config file.
func TestRegistersWithItsAddressesAndIdentity(t *testing.T) {
	cl := newCluster(t, 1, "")
	conf := filepath.Join(t.TempDir(), "proxy.conf")
	if err := os.WriteFile(conf, []byte("# topom-proxy settings\ndatacenter = \"dc-east\"\nproxy_id = \"p-conf\"\nsession_auth = \"s3cret\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := cl.proxy(t, "--config", conf, "--datacenter", "dc-flag")
	var got *topompb.Proxy
	testenv.WaitFor(t, waitLong, "topom to list the proxy", func() error {
		ps, err := cl.c.ListProxies(context.Background())
		if err != nil {
			return err
		}
		for _, x := range ps {
			if x.GetToken() == "p-conf" {
				got = x
				return nil
			}
		}
		return os.ErrNotExist
	})
	host, _ := os.Hostname()
	if got.GetProxyAddr() != p.Addr || got.GetAdminAddr() != p.Admin {
		t.Errorf("addresses: %q %q, want %q %q", got.GetProxyAddr(), got.GetAdminAddr(), p.Addr, p.Admin)
	}
	if got.GetDatacenter() != "dc-flag" {
		t.Errorf("datacenter %q: the flag must win over the file", got.GetDatacenter())
	}
	if got.GetPid() != uint32(p.Pid()) || got.GetHostname() != host || got.GetVersion() != "dev" {
		t.Errorf("identity: pid %d host %q version %q", got.GetPid(), got.GetHostname(), got.GetVersion())
	}
	// session_auth from the file.
	c := dial(t, p.Addr)
	expect(t, c, "(error) NOAUTH Authentication required.", "GET", "k")
	expect(t, c, "(error) WRONGPASS invalid username-password pair or user is disabled.", "AUTH", "nope")
	expect(t, c, "OK", "AUTH", "s3cret")
	expect(t, c, "(nil)", "GET", "k")
}

// Bad flags and files are refused at start with a message naming them.
func TestBadSettingsAreRefused(t *testing.T) {
	t.Setenv("TOPOM_ADDR", "")
	conf := filepath.Join(t.TempDir(), "bad.conf")
	_ = os.WriteFile(conf, []byte("listen = 127.0.0.1:0\nno_such_key = 1\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--topom (or TOPOM_ADDR) is required"},
		{[]string{"--topom", "x:1", "--backend-conns", "0"}, "--backend-conns 0 out of range 1..64"},
		{[]string{"--topom", "x:1", "--config", conf}, `bad.conf:2: unknown key "no-such-key" (keys are the flag names)`},
		{[]string{"--topom", "x:1", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-level", "loud"}, `--log-level "loud": want debug, info, warn or error`},
	} {
		_, err := loadConfig(tc.args)
		if err == nil && tc.want != "" {
			if cfg, _ := loadConfig(tc.args); cfg != nil {
				err = run(cfg)
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.args, err, tc.want)
		}
	}
	t.Setenv("TOPOM_ADDR", "a:1,b:2")
	if cfg, err := loadConfig(nil); err != nil || cfg.Topom != "a:1,b:2" {
		t.Errorf("TOPOM_ADDR: got %+v, %v; want the endpoints from the environment", cfg, err)
	}
}

// With topom down at start the proxy listens, is not ready, retries with
// backoff, and serves once topom comes up at the address.
func TestStartsWithTopomDownAndServesWhenItComesUp(t *testing.T) {
	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p := testenv.StartProxy(t, addr)
	testenv.WaitFor(t, waitLong, "/healthz to answer", func() error {
		_, _, err := p.Healthz()
		return err
	})
	code, body, _ := p.Healthz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no slot table from topom yet") {
		t.Errorf("/healthz with topom down: %d %q", code, body)
	}
	c := dial(t, p.Addr)
	expect(t, c, "(error) ERR proxy has no slot table from topom yet", "GET", "k")
	expect(t, c, "PONG", "PING")

	tp := testenv.StartTopom(t, testenv.TopomOptions{Listen: addr})
	r := testenv.StartRedis(t)
	ctx := context.Background()
	tc := dialTopom(t, tp.Addr)
	if err := tc.CreateGroup(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Topom.AddGroupServer(ctx, &topompb.AddGroupServerRequest{GroupId: 1, Addr: r.Addr, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	assignAll(t, tc, 1)
	p.WaitReady(t, waitLong)
	testenv.WaitFor(t, waitLong, "the proxy to serve slot 0's group", func() error {
		v, err := c.Do("SET", "k", "v")
		if err != nil {
			return err
		}
		if v.Kind == '-' {
			return os.ErrInvalid
		}
		return nil
	})
	if got, _ := r.Do("GET", "k"); got != "v" {
		t.Errorf("GET k on the backend: %q", got)
	}
	// Backoff, not a busy loop: a handful of connection attempts logged per second at most.
	if n := strings.Count(p.Log(1<<20), "topom slot stream ended; reconnecting"); n > 200 {
		t.Errorf("%d reconnect attempts logged", n)
	}
}

// SIGTERM: the listener closes, open sessions get the replies to what they
// sent, the proxy deregisters from topom, and the process exits 0 within
// the grace period.
func TestSigtermDrainsAndExitsZero(t *testing.T) {
	cl := newCluster(t, 2, "")
	p := cl.proxy(t, "--drain-grace", "20s")
	listed := func() bool {
		ps, err := cl.c.ListProxies(context.Background())
		if err != nil {
			t.Fatalf("ListProxies: %v", err)
		}
		for _, x := range ps {
			if x.GetProxyAddr() == p.Addr {
				return true
			}
		}
		return false
	}
	if !listed() {
		t.Fatal("the serving proxy is not registered")
	}
	c := dial(t, p.Addr)
	expect(t, c, "OK", "SET", "k", "v")
	for i := 0; i < 1000; i++ {
		_ = c.Send("GET", "k")
	}
	_ = c.Flush()
	done := make(chan error, 1)
	go func() { done <- p.Term(60 * time.Second) }()
	for i := 0; i < 1000; i++ {
		v, err := c.Receive()
		if err != nil || v.String() != "v" {
			t.Fatalf("reply %d after SIGTERM: %v %v", i, v, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if _, err := testenv.Dial(p.Addr); err == nil {
		t.Error("the listener still accepts after exit")
	}
	// It deregistered before exiting: no record is left to expire.
	if listed() {
		t.Errorf("topom still lists the proxy after its SIGTERM shutdown:\n%s", p.Log(2<<10))
	}
	if !strings.Contains(p.Log(8<<10), "topom-proxy stopped") {
		t.Errorf("log does not end with the stop line:\n%s", p.Log(2<<10))
	}
}
