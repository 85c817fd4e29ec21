package topom_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	topom "github.com/topom/topom/clients/go"
	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

// standby is an in-process gRPC server answering every call UNAVAILABLE with
// the trailing metadata topom-leader = leader, as a standby topom does.
func standby(t *testing.T, leader string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		stream.SetTrailer(metadata.Pairs(topom.LeaderMetadataKey, leader))
		return status.Error(codes.Unavailable, "standby: not the leader")
	}))
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

func TestClientEndpoints(t *testing.T) {
	tp := testenv.StartTopom(t, testenv.TopomOptions{AdminToken: "s3cret", Config: testConfig})
	dead := "127.0.0.1:" + itoa(testenv.FreePort(t)) // nothing listens there
	ctx := context.Background()

	t.Run("dead first endpoint", func(t *testing.T) {
		c, err := topom.Dial(dead + "," + tp.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.ListSlots(ctx); err != nil {
			t.Fatalf("ListSlots past a dead endpoint: %v", err)
		}
		if c.Current() != tp.Addr {
			t.Fatalf("current endpoint %s, want %s", c.Current(), tp.Addr)
		}
	})

	t.Run("standby names the leader", func(t *testing.T) {
		sb := standby(t, tp.Addr)
		c, err := topom.Dial(sb) // the leader is not in the list: learned from the trailer
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.GetOverview(ctx); err != nil {
			t.Fatalf("GetOverview via a standby: %v", err)
		}
		if c.Current() != tp.Addr {
			t.Fatalf("current endpoint %s, want the leader %s", c.Current(), tp.Addr)
		}
	})

	t.Run("token and status codes", func(t *testing.T) {
		anon, err := topom.Dial(tp.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer anon.Close()
		if err := anon.CreateGroup(ctx, 1); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("CreateGroup without a token: %v, want code Unauthenticated", err)
		}
		c, err := topom.Dial(tp.Addr, topom.WithToken("s3cret"), topom.WithCallTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.CreateGroup(ctx, 1); err != nil {
			t.Fatalf("CreateGroup with the token: %v", err)
		}
		if err := c.CreateGroup(ctx, 1); status.Code(err) == codes.OK || status.Code(err) == codes.Unknown {
			t.Fatalf("CreateGroup twice: %v, want a precise gRPC code", err)
		}
	})

	t.Run("watcher past a dead endpoint", func(t *testing.T) {
		// RegisterProxy is a mutation: it needs the admin token too.
		c, err := topom.Dial(dead+","+tp.Addr, topom.WithToken("s3cret"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		w := startWatcher(t, c, "p-endpoints", nil)
		testenv.WaitFor(t, waitLong, "the watcher to serve", func() error {
			_, err := w.Table()
			return err
		})
	})
}

// flaky answers every call UNAVAILABLE with no standby marker, as a
// connection cut mid-call looks, and counts the calls it got.
func flaky(t *testing.T, calls *atomic.Int32) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		calls.Add(1)
		return status.Error(codes.Unavailable, "connection reset")
	}))
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

func TestMutationsWithAnUnknownOutcomeAreNotResent(t *testing.T) {
	var first, second atomic.Int32
	a, b := flaky(t, &first), flaky(t, &second)
	c, err := topom.Dial(a + "," + b)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	err = c.CreateGroup(ctx, 1)
	if status.Code(err) != codes.Unavailable || first.Load() != 1 || second.Load() != 0 {
		t.Fatalf("CreateGroup: %v after %d+%d calls, want UNAVAILABLE after one call", err, first.Load(), second.Load())
	}
	// A read goes on to the next endpoint.
	if _, err := c.ListSlots(ctx); status.Code(err) != codes.Unavailable || second.Load() == 0 {
		t.Fatalf("ListSlots: %v, second endpoint called %d times, want it tried", err, second.Load())
	}
}

func TestDialNeedsAnEndpoint(t *testing.T) {
	if _, err := topom.Dial(" , "); err == nil {
		t.Fatal("Dial with no endpoint succeeded")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// countHandler counts log records whose message is msg.
type countHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// topom unreachable at start: the watcher retries with growing delays, not in
// a busy loop, and Run still returns when its context ends.
func TestWatcherBacksOffWhileTopomIsDown(t *testing.T) {
	c, err := topom.Dial("127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var attempts atomic.Int64
	w := topom.NewSlotWatcher(c, topom.WatcherConfig{
		Proxy:      &topompb.Proxy{Token: "p-down"},
		MinBackoff: 100 * time.Millisecond,
		MaxBackoff: 400 * time.Millisecond,
		Logger:     slog.New(countHandler{msg: "topom slot stream ended; reconnecting", n: &attempts}),
	})
	const window = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	if err := w.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want the context's error", err)
	}
	// Delays are at least 50, 100, 200, 200, ... ms: at most 2s/50ms = 40
	// even if they never grew; with growth about 10. Fewer on a slow machine.
	if n := attempts.Load(); n < 2 || n > 20 {
		t.Fatalf("%d connection attempts in %s, want 2..20 (backoff 100ms doubling to 400ms)", n, window)
	}
	if _, err := w.Table(); !errors.Is(err, topom.ErrNotSynced) {
		t.Fatalf("Table() = %v, want ErrNotSynced", err)
	}
}
