package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is every setting of topom-proxy. Each field has one flag; a config
// file (--config) may set the same keys, written with '_' or '-'; flags given
// on the command line win over the file.
type config struct {
	Topom        string
	Listen       string
	Admin        string
	Advertise    string
	Token        string
	ProxyID      string
	Datacenter   string
	Product      string
	ProductAuth  string
	SessionAuth  string
	BackendConns int
	MaxPipeline  int
	MaxSessionMB int
	ReadReplicas bool
	LockedHold   time.Duration
	DrainGrace   time.Duration
	WriteTimeout time.Duration
	LogLevel     string
	Pprof        bool
}

func defineFlags(fs *flag.FlagSet, c *config) *string {
	fs.StringVar(&c.Topom, "topom", os.Getenv("TOPOM_ADDR"), "topom gRPC endpoint(s), ADDR[,ADDR...] (required; default $TOPOM_ADDR)")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:19000", "RESP listen address for clients")
	fs.StringVar(&c.Admin, "admin", "127.0.0.1:11080", "HTTP admin address (/metrics, /healthz)")
	fs.StringVar(&c.Advertise, "advertise", "", "client address registered with topom (default: the bound --listen address, hostname for a wildcard host)")
	fs.StringVar(&c.Token, "token", "", "bearer token for topom's API (topom's admin_token)")
	fs.StringVar(&c.ProxyID, "proxy-id", "", "this proxy's stable identity at topom (default: derived from hostname and listen address)")
	fs.StringVar(&c.Datacenter, "datacenter", "", "datacenter label (orders replica groups)")
	fs.StringVar(&c.Product, "product", "", "product name to register with")
	fs.StringVar(&c.ProductAuth, "product-auth", "", "password the proxy sends to backends (AUTH)")
	fs.StringVar(&c.SessionAuth, "session-auth", "", "password clients must send (AUTH); empty: none")
	fs.IntVar(&c.BackendConns, "backend-conns", 2, "pipelined connections per backend server")
	fs.IntVar(&c.MaxPipeline, "max-pipeline", 10000, "unanswered requests per session; beyond it the proxy stops reading from the client until it reads replies")
	fs.IntVar(&c.MaxSessionMB, "max-session-mb", 32, "MiB of requests and replies one session may hold; beyond it the proxy stops reading from the client until it reads replies")
	fs.BoolVar(&c.ReadReplicas, "read-replicas", false, "send read-only commands to the nearest replicas topom lists for the slot (same datacenter and host first, then same datacenter, then the rest); reads may then be stale")
	fs.DurationVar(&c.LockedHold, "locked-hold", 5*time.Second, "how long a request waits on a locked (preparing) slot before 'being moved, retry'")
	fs.DurationVar(&c.DrainGrace, "drain-grace", 10*time.Second, "on SIGTERM, how long open sessions may finish")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 30*time.Second, "a client that reads none of its replies for this long (up to 1.5 times as long) is disconnected")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve /debug/pprof/ on the admin address")
	return fs.String("config", "", "config file: 'key = value' lines with the flag names as keys (# comments)")
}

// loadConfig parses args; a --config file fills the keys not given as flags.
func loadConfig(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("topom-proxy", flag.ContinueOnError)
	file := defineFlags(fs, c)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (every setting is a --flag)", fs.Arg(0))
	}
	if *file != "" {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		if err := applyFile(fs, *file, given); err != nil {
			return nil, err
		}
	}
	if c.Topom == "" {
		return nil, errors.New("--topom (or TOPOM_ADDR) is required: topom's gRPC address(es), e.g. 127.0.0.1:18080,127.0.0.1:18081")
	}
	if c.BackendConns < 1 || c.BackendConns > 64 {
		return nil, fmt.Errorf("--backend-conns %d out of range 1..64", c.BackendConns)
	}
	if c.MaxPipeline < 1 {
		return nil, fmt.Errorf("--max-pipeline %d must be at least 1", c.MaxPipeline)
	}
	if c.MaxSessionMB < 1 || c.MaxSessionMB > 64<<10 {
		return nil, fmt.Errorf("--max-session-mb %d out of range 1..65536", c.MaxSessionMB)
	}
	return c, nil
}

// applyFile sets every key of the file that was not given as a flag.
func applyFile(fs *flag.FlagSet, path string, given map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want 'key = value', got %q", path, n, line)
		}
		k = strings.ReplaceAll(strings.TrimSpace(k), "_", "-")
		v = strings.TrimSpace(v)
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		}
		if k == "config" || fs.Lookup(k) == nil {
			return fmt.Errorf("%s:%d: unknown key %q (keys are the flag names)", path, n, k)
		}
		if given[k] {
			continue
		}
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("%s:%d: %s: %v", path, n, k, err)
		}
	}
	return sc.Err()
}
