package topom_test

// Smoke test against a real topom server binary, started by testenv ($TOPOM_BIN,
// else <repo>/target/debug/topom) as `topom --listen 127.0.0.1:0 --data-dir <tmp>`.
// It must print "LISTENING 127.0.0.1:<port>" once it serves and exit 0 on SIGTERM.

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"

	topom "github.com/topom/topom/clients/go"
	"github.com/topom/topom/clients/go/internal/testenv"
	"github.com/topom/topom/clients/go/topompb"
)

const (
	slotCount   = 1024
	callTimeout = 30 * time.Second
)

func TestSmoke(t *testing.T) {
	srv := testenv.StartTopom(t, testenv.TopomOptions{})
	if host, _, err := net.SplitHostPort(srv.Addr); err != nil || host != "127.0.0.1" {
		t.Fatalf("LISTENING line has a bad address %q (want 127.0.0.1:<port>)", srv.Addr)
	}
	t.Logf("topom listening on %s", srv.Addr)

	c, err := topom.Dial(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	t.Run("ListSlots", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		resp, err := c.Topom.ListSlots(ctx, &topompb.ListSlotsRequest{})
		if err != nil {
			t.Fatalf("ListSlots: %v", err)
		}
		if n := len(resp.GetMappings()); n != slotCount {
			t.Errorf("ListSlots: %d mappings, want %d", n, slotCount)
		}
		if n := len(resp.GetSlots()); n != slotCount {
			t.Errorf("ListSlots: %d slots, want %d", n, slotCount)
		}
		if resp.GetRevision() < 1 {
			t.Errorf("ListSlots: revision %d, want >= 1", resp.GetRevision())
		}
		if resp.GetEpoch() == "" {
			t.Errorf("ListSlots: empty epoch")
		}
		// Both lists are in slot order.
		for i, m := range resp.GetMappings() {
			if m.GetId() != uint32(i) {
				t.Errorf("ListSlots: mappings[%d].id = %d", i, m.GetId())
				break
			}
		}
		for i, s := range resp.GetSlots() {
			if s.GetId() != uint32(i) {
				t.Errorf("ListSlots: slots[%d].id = %d", i, s.GetId())
				break
			}
		}
	})

	t.Run("ListGroups", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		resp, err := c.Topom.ListGroups(ctx, &topompb.ListGroupsRequest{})
		if err != nil {
			t.Fatalf("ListGroups: %v", err)
		}
		t.Logf("ListGroups: %d groups", len(resp.GetGroups()))
	})

	t.Run("Health", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		resp, err := grpc_health_v1.NewHealthClient(c.Conn()).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: ""})
		if err != nil {
			t.Fatalf("Health/Check: %v", err)
		}
		if got := resp.GetStatus(); got != grpc_health_v1.HealthCheckResponse_SERVING {
			t.Errorf("Health/Check(\"\") = %v, want SERVING", got)
		}
	})

	// Close our connection first so a graceful shutdown has nothing to wait for.
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	srv.Stop(t) // fails unless topom exits 0 on SIGTERM
}
