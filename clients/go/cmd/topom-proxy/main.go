// Command topom-proxy is a RESP2 proxy for a topom-managed Redis cluster: it
// follows topom's slot table (SlotWatcher), routes each command by its keys
// to the slot's master, and serves /metrics and /healthz on an admin port.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	topom "github.com/topom/topom/clients/go"
	"github.com/topom/topom/clients/go/proxy"
	"github.com/topom/topom/clients/go/topompb"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	cfg, err := loadConfig(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "topom-proxy:", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "topom-proxy:", err)
		os.Exit(1)
	}
}

func run(cfg *config) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", cfg.LogLevel)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// Listeners first: a port clash is an error at start, not after topom answers.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	adminLn, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		ln.Close()
		return fmt.Errorf("--admin: %w", err)
	}
	proxyAddr := advertised(cfg.Advertise, ln.Addr())
	adminAddr := advertised("", adminLn.Addr())

	p := proxy.New(proxy.Config{
		ProductAuth:     cfg.ProductAuth,
		SessionAuth:     cfg.SessionAuth,
		BackendConns:    cfg.BackendConns,
		MaxPipeline:     cfg.MaxPipeline,
		MaxSessionBytes: cfg.MaxSessionMB << 20,
		ReadReplicas:    cfg.ReadReplicas,
		LockedHold:      cfg.LockedHold,
		DrainGrace:      cfg.DrainGrace,
		WriteTimeout:    cfg.WriteTimeout,
		Version:         version,
		Logger:          log,
	})

	opts := []topom.Option{topom.WithCallTimeout(10 * time.Second)}
	if cfg.Token != "" {
		opts = append(opts, topom.WithToken(cfg.Token))
	}
	client, err := topom.DialEndpoints(strings.Split(cfg.Topom, ","), opts...)
	if err != nil {
		return fmt.Errorf("--topom: %w", err)
	}
	defer client.Close()

	id := cfg.ProxyID
	if id == "" {
		id = defaultID(proxyAddr)
	}
	host, _ := os.Hostname()
	wd, _ := os.Getwd()
	w := topom.NewSlotWatcher(client, topom.WatcherConfig{
		Proxy: &topompb.Proxy{
			Token:       id,
			ProxyAddr:   proxyAddr,
			AdminAddr:   adminAddr,
			ProtoType:   "tcp4",
			ProductName: cfg.Product,
			Datacenter:  cfg.Datacenter,
			Version:     version,
			Hostname:    host,
			Pwd:         wd,
			Pid:         uint32(os.Getpid()),
		},
		Applier: p.Applier(),
		Stats:   p.Stats,
		Logger:  log,
	})

	p.SetLeaseCheck(w.LeaseLive)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	wctx, cancelWatch := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); _ = w.Run(wctx) }()

	admin := &http.Server{Handler: adminHandler(p, cfg.Pprof), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := admin.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server", "err", err)
		}
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- p.Serve(ln) }()
	// Tests and scripts wait for this line before connecting.
	fmt.Printf("LISTENING %s ADMIN %s\n", ln.Addr(), adminLn.Addr())
	log.Info("topom-proxy serving", "listen", ln.Addr().String(), "admin", adminLn.Addr().String(),
		"proxy_id", id, "topom", cfg.Topom, "version", version)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("signal received: draining sessions", "grace", cfg.DrainGrace)
	case runErr = <-serveErr:
		log.Error("client listener failed", "err", runErr)
	}
	// The watcher keeps the table current while sessions drain.
	if err := p.Shutdown(context.Background()); err != nil {
		log.Warn("drain", "err", err)
	}
	cancelWatch()
	<-watchDone
	// Only now, with no session left and the stream closed: topom stops
	// waiting for this proxy's ACKs once it is removed, so a proxy still
	// serving must stay registered (and fenced by its lease) until here.
	deregister(client, id, log)
	shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = admin.Shutdown(shutCtx)
	log.Info("topom-proxy stopped")
	return runErr
}

// deregister removes the proxy's record from topom, so that a proxy shut
// down on purpose is not listed (and waited for) as one whose lease expired.
// A failure is logged, not fatal: the record then expires with the lease.
func deregister(c *topom.Client, id string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.RemoveProxy(ctx, id, true); err != nil {
		log.Warn("could not deregister from topom; its record stays until the lease expires", "proxy_id", id, "err", err)
		return
	}
	log.Info("deregistered from topom", "proxy_id", id)
}

// adminHandler is the proxy's /metrics and /healthz, plus the profiler
// when asked for (it is off by default: it exposes internals).
func adminHandler(p *proxy.Proxy, withPprof bool) http.Handler {
	if !withPprof {
		return p.AdminHandler()
	}
	mux := http.NewServeMux()
	mux.Handle("/", p.AdminHandler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// advertised is the address to register: the flag if set, else the bound
// address, with the hostname in place of a wildcard host.
func advertised(flagValue string, bound net.Addr) string {
	if flagValue != "" {
		return flagValue
	}
	host, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return bound.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// defaultID is stable across restarts of the same proxy (same host and
// address), so topom sees a restart as the same proxy coming back.
func defaultID(proxyAddr string) string {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host + "|" + proxyAddr))
	return "proxy-" + hex.EncodeToString(sum[:8])
}
