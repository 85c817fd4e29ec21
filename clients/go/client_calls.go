package topom

import (
	"context"

	"github.com/topom/topom/clients/go/topompb"
)

// Typed helpers for what proxies and operators call most. Everything else is
// on c.Topom and c.ProxyControl.

// GetOverview returns topom's overview.
func (c *Client) GetOverview(ctx context.Context) (*topompb.GetOverviewResponse, error) {
	return c.Topom.GetOverview(ctx, &topompb.GetOverviewRequest{})
}

// ListSlots returns the slot mappings and the proxy view, with the table's
// epoch and revision.
func (c *Client) ListSlots(ctx context.Context) (*topompb.ListSlotsResponse, error) {
	return c.Topom.ListSlots(ctx, &topompb.ListSlotsRequest{})
}

// ListProxies returns every registered proxy with its stream status.
func (c *Client) ListProxies(ctx context.Context) ([]*topompb.Proxy, error) {
	r, err := c.Topom.ListProxies(ctx, &topompb.ListProxiesRequest{})
	return r.GetProxies(), err
}

// ListGroups returns every group.
func (c *Client) ListGroups(ctx context.Context) ([]*topompb.Group, error) {
	r, err := c.Topom.ListGroups(ctx, &topompb.ListGroupsRequest{})
	return r.GetGroups(), err
}

// CreateGroup creates group id (1..9999).
func (c *Client) CreateGroup(ctx context.Context, id uint32) error {
	_, err := c.Topom.CreateGroup(ctx, &topompb.CreateGroupRequest{GroupId: id})
	return err
}

// AddGroupServer adds the server addr ("host:port") to group id.
func (c *Client) AddGroupServer(ctx context.Context, id uint32, addr, datacenter string) error {
	_, err := c.Topom.AddGroupServer(ctx, &topompb.AddGroupServerRequest{GroupId: id, Addr: addr, Datacenter: datacenter})
	return err
}

// AssignSlots assigns the slots ids to group (an existing non-empty group),
// without migrating keys.
func (c *Client) AssignSlots(ctx context.Context, group uint32, ids ...int) error {
	req := &topompb.AssignSlotsRequest{}
	for _, id := range ids {
		req.Mappings = append(req.Mappings, &topompb.SlotMapping{Id: uint32(id), GroupId: group})
	}
	_, err := c.Topom.AssignSlots(ctx, req)
	return err
}

// RegisterProxy announces a proxy (idempotent per token).
func (c *Client) RegisterProxy(ctx context.Context, p *topompb.Proxy) (*topompb.RegisterProxyResponse, error) {
	return c.ProxyControl.RegisterProxy(ctx, &topompb.RegisterProxyRequest{Proxy: p})
}

// ReinitProxy makes topom send the proxy a full snapshot on its stream.
func (c *Client) ReinitProxy(ctx context.Context, token string) error {
	_, err := c.Topom.ReinitProxy(ctx, &topompb.ReinitProxyRequest{Token: token})
	return err
}

// RemoveProxy unregisters the proxy token; force removes it even while its
// stream is open.
func (c *Client) RemoveProxy(ctx context.Context, token string, force bool) error {
	_, err := c.Topom.RemoveProxy(ctx, &topompb.RemoveProxyRequest{Token: token, Force: force})
	return err
}
