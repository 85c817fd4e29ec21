// Package topom is the Go client of the topom control plane and the module a
// Go proxy embeds: Client (one or several topom endpoints), SlotWatcher (the
// slot-table stream with ACK/NACK, heartbeats, the lease and fencing), Table
// and SlotOf (routing).
//
// The generated gRPC stubs and messages live in the topompb subpackage
// (regenerate them with scripts/gen-clients).
package topom

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/topom/topom/clients/go/topompb"
)

// LeaderMetadataKey is the trailing metadata a standby topom sets, with an
// UNAVAILABLE status, to name the leader's address.
const LeaderMetadataKey = "topom-leader"

// MinKeepalive is the shortest keepalive ping interval used: grpc-go raises
// lower values to 10 s anyway, and servers may answer faster pings with
// GOAWAY too_many_pings.
const MinKeepalive = 10 * time.Second

// Option configures Dial.
type Option func(*options)

type options struct {
	tls          *tls.Config
	token        string
	callTimeout  time.Duration
	failoverWait time.Duration
	keepalive    time.Duration
	dialOpts     []grpc.DialOption
}

// WithTLS uses TLS with cfg instead of plaintext.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithToken sends "authorization: Bearer <token>" on every call (topom's
// admin token). Over plaintext the token travels in clear: use WithTLS off
// loopback.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithCallTimeout bounds every unary call that has no deadline of its own
// (default 10 s; 0 disables). Streams are not bounded.
func WithCallTimeout(d time.Duration) Option { return func(o *options) { o.callTimeout = d } }

// WithFailoverWait bounds how long a unary call keeps going around the
// endpoints while every one answers UNAVAILABLE, as happens while leadership
// moves (default 15 s, within the call's deadline; 0: once around only).
func WithFailoverWait(d time.Duration) Option { return func(o *options) { o.failoverWait = d } }

// WithKeepalive sets the keepalive ping interval (default 30 s; values below
// MinKeepalive are raised to it).
func WithKeepalive(d time.Duration) Option { return func(o *options) { o.keepalive = d } }

// WithDialOptions appends raw grpc dial options (applied last).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// Client talks to one topom out of a list of endpoints: calls go to the
// current endpoint; when it answers UNAVAILABLE the call is tried on the
// leader it names (trailing metadata "topom-leader"), else on the next
// endpoint, around the list again with a pause while all refuse (see
// WithFailoverWait). Errors keep their gRPC status, so status.Code(err)
// works.
type Client struct {
	// Topom is the admin API (topom.v1.Topom), with failover.
	Topom topompb.TopomClient
	// ProxyControl is the API proxies use (topom.v1.ProxyControl), with failover.
	ProxyControl topompb.ProxyControlClient

	opts options

	mu        sync.Mutex
	endpoints []string
	conns     map[string]*grpc.ClientConn
	current   int
	closed    bool
}

// Dial returns a client for the comma-separated endpoints in target
// ("host:port[,host:port...]"). Connections are made lazily, on the first
// call. Plaintext unless WithTLS.
func Dial(target string, opts ...Option) (*Client, error) {
	return DialEndpoints(strings.Split(target, ","), opts...)
}

// DialEndpoints is Dial with the endpoints as a list.
func DialEndpoints(endpoints []string, opts ...Option) (*Client, error) {
	c := &Client{conns: map[string]*grpc.ClientConn{}}
	c.opts = options{callTimeout: 10 * time.Second, failoverWait: 15 * time.Second, keepalive: 30 * time.Second}
	for _, o := range opts {
		o(&c.opts)
	}
	if c.opts.keepalive < MinKeepalive {
		c.opts.keepalive = MinKeepalive
	}
	for _, e := range endpoints {
		if e = strings.TrimSpace(e); e != "" {
			c.endpoints = append(c.endpoints, e)
		}
	}
	if len(c.endpoints) == 0 {
		return nil, errors.New("topom: dial: no endpoint given (want host:port[,host:port...])")
	}
	if _, err := c.conn(c.endpoints[0]); err != nil {
		return nil, err
	}
	cc := &failoverConn{c: c}
	c.Topom = topompb.NewTopomClient(cc)
	c.ProxyControl = topompb.NewProxyControlClient(cc)
	return c, nil
}

// Endpoints returns the endpoint list (including leaders learned from
// redirects).
func (c *Client) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.endpoints...)
}

// Current returns the endpoint calls go to now.
func (c *Client) Current() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpoints[c.current]
}

// Conn returns the connection to the current endpoint (e.g. for the health
// service).
func (c *Client) Conn() *grpc.ClientConn {
	cc, _ := c.conn(c.Current())
	return cc
}

// Close closes every connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for _, cc := range c.conns {
		errs = append(errs, cc.Close())
	}
	c.conns = map[string]*grpc.ClientConn{}
	return errors.Join(errs...)
}

// conn returns (creating if needed) the connection to addr.
func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, status.Error(codes.Canceled, "topom: client is closed")
	}
	if cc := c.conns[addr]; cc != nil {
		return cc, nil
	}
	creds := insecure.NewCredentials()
	if c.opts.tls != nil {
		creds = credentials.NewTLS(c.opts.tls)
	}
	dopts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: c.opts.keepalive, Timeout: 10 * time.Second}),
	}
	if c.opts.token != "" {
		dopts = append(dopts, grpc.WithPerRPCCredentials(bearer(c.opts.token)))
	}
	dopts = append(dopts, c.opts.dialOpts...)
	cc, err := grpc.NewClient(addr, dopts...)
	if err != nil {
		return nil, fmt.Errorf("topom: dial %q: %w", addr, err)
	}
	c.conns[addr] = cc
	return cc, nil
}

// pick returns the current endpoint and its position.
func (c *Client) pick() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpoints[c.current], c.current
}

// failedOver moves on from the endpoint at position i after an UNAVAILABLE
// answer: to leader when one was named, else to the next endpoint.
func (c *Client) failedOver(i int, leader string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i != c.current {
		return // someone else moved on already
	}
	if leader != "" {
		for j, e := range c.endpoints {
			if e == leader {
				c.current = j
				return
			}
		}
		c.endpoints = append(c.endpoints, leader)
		c.current = len(c.endpoints) - 1
		return
	}
	c.current = (c.current + 1) % len(c.endpoints)
}

// RoleMetadataKey is the metadata key a standby's refusals carry ("standby"):
// the call did nothing there, so it may be sent elsewhere.
const RoleMetadataKey = "topom-role"

// idempotent lists the calls that change nothing, or nothing twice: sending
// one again after a connection failed mid-call is harmless.
var idempotent = map[string]bool{
	"/topom.v1.Topom/GetOverview":          true,
	"/topom.v1.Topom/GetModel":             true,
	"/topom.v1.Topom/GetServerInfo":        true,
	"/topom.v1.Topom/GetSentinelInfo":      true,
	"/topom.v1.Topom/ListEvents":           true,
	"/topom.v1.Topom/GetStats":             true,
	"/topom.v1.Topom/RefreshRedisStats":    true,
	"/topom.v1.Topom/ListSlots":            true,
	"/topom.v1.Topom/ListGroups":           true,
	"/topom.v1.Topom/GetGroup":             true,
	"/topom.v1.Topom/ListSentinels":        true,
	"/topom.v1.Topom/ListProxies":          true,
	"/topom.v1.ProxyControl/RegisterProxy": true, // registering again updates the same record
}

// safeToResend reports whether a call that failed UNAVAILABLE may go to
// another endpoint: a standby refused it (it did nothing), the connection
// was never made (nothing was sent), or sending it twice is harmless.
func safeToResend(method string, err error, trailer metadata.MD) bool {
	if leaderOf(trailer) != "" || len(trailer.Get(RoleMetadataKey)) > 0 || idempotent[method] {
		return true
	}
	return strings.Contains(status.Convert(err).Message(), "Error while dialing")
}

// leaderOf returns the "topom-leader" value of trailing metadata.
func leaderOf(md metadata.MD) string {
	if v := md.Get(LeaderMetadataKey); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// failoverConn routes calls to the client's current endpoint and fails over
// on UNAVAILABLE.
type failoverConn struct{ c *Client }

func (f *failoverConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if _, ok := ctx.Deadline(); !ok && f.c.opts.callTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.c.opts.callTimeout)
		defer cancel()
	}
	giveUp := time.Now().Add(f.c.opts.failoverWait)
	pause := failoverPauseMin
	for {
		done, err := f.round(ctx, method, args, reply, opts)
		if done {
			return err
		}
		// Every endpoint refused: during a hand-over or a takeover no
		// instance leads for a moment, so wait and go around again.
		if time.Now().Add(pause).After(giveUp) {
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(pause).After(dl) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause = min(pause*2, failoverPauseMax)
	}
}

// Pauses between rounds of failoverConn.Invoke: short, since a Resign hands
// over within a fraction of a second; capped, so a takeover after a crash
// (a lease TTL) is seen soon after it happens.
const (
	failoverPauseMin = 20 * time.Millisecond
	failoverPauseMax = 500 * time.Millisecond
)

// round tries the call once around the endpoints plus one redirect; done is
// false when every try answered UNAVAILABLE (err is then the last answer).
func (f *failoverConn) round(ctx context.Context, method string, args, reply any, opts []grpc.CallOption) (done bool, err error) {
	attempts := len(f.c.Endpoints()) + 1
	for a := 0; a < attempts; a++ {
		addr, i := f.c.pick()
		var cc *grpc.ClientConn
		if cc, err = f.c.conn(addr); err != nil {
			return true, err
		}
		var trailer metadata.MD
		err = cc.Invoke(ctx, method, args, reply, append(opts, grpc.Trailer(&trailer))...)
		if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
			return true, err
		}
		if !safeToResend(method, err, trailer) {
			// A mutation cut mid-call may have been applied: the caller
			// decides (the error says so), it is not sent twice.
			return true, status.Errorf(codes.Unavailable, "%s sent to %s, then the connection failed: it may have been applied, so it was not re-sent: %v",
				method, addr, status.Convert(err).Message())
		}
		f.c.failedOver(i, leaderOf(trailer))
	}
	return false, err
}

func (f *failoverConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	addr, _ := f.c.pick()
	cc, err := f.c.conn(addr)
	if err != nil {
		return nil, err
	}
	return cc.NewStream(ctx, desc, method, opts...)
}

// streamFailed moves the client on after a stream to addr ended with err and
// trailer (the watcher calls it before reconnecting).
func (c *Client) streamFailed(addr string, err error, trailer metadata.MD) {
	if status.Code(err) != codes.Unavailable && leaderOf(trailer) == "" {
		return
	}
	c.mu.Lock()
	i := -1
	for j, e := range c.endpoints {
		if e == addr {
			i = j
		}
	}
	c.mu.Unlock()
	if i >= 0 {
		c.failedOver(i, leaderOf(trailer))
	}
}

// bearer is per-RPC "authorization: Bearer <token>" credentials.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so that loopback tests and plaintext
// deployments can use a token; see WithToken.
func (bearer) RequireTransportSecurity() bool { return false }
