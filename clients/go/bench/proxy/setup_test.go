package proxy

import (
	"context"
	"testing"
	"time"

	topom "github.com/topom/topom/clients/go"
	"github.com/topom/topom/clients/go/topompb"
)

// setupTopom makes one group served by backend and gives it every slot.
func setupTopom(b *testing.B, topomAddr, backend string) {
	b.Helper()
	c, err := topom.Dial(topomAddr, topom.WithCallTimeout(20*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.CreateGroup(ctx, 1); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Topom.AddGroupServer(ctx, &topompb.AddGroupServerRequest{GroupId: 1, Addr: backend, NoSync: true}); err != nil {
		b.Fatal(err)
	}
	ids := make([]int, topom.SlotCount)
	for i := range ids {
		ids[i] = i
	}
	if err := c.AssignSlots(ctx, 1, ids...); err != nil {
		b.Fatal(err)
	}
}
