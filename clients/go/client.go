// Package topom is the Go client of the topom control plane.
//
// The generated gRPC stubs and messages live in the topompb subpackage
// (regenerate them with scripts/gen-clients). This package only adds a small
// convenience to open one connection that serves both services.
package topom

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/topom/topom/clients/go/topompb"
)

// Client holds one gRPC connection and the clients of both topom services.
type Client struct {
	// Topom is the admin API (topom.v1.Topom).
	Topom topompb.TopomClient
	// ProxyControl is the API proxies use (topom.v1.ProxyControl).
	ProxyControl topompb.ProxyControlClient

	conn *grpc.ClientConn
}

// Dial connects to a topom server at target ("host:port" or any gRPC target
// string). With no options it uses plaintext (insecure) transport credentials;
// pass your own grpc.DialOption values to change that. The connection is made
// lazily, on the first call.
func Dial(target string, opts ...grpc.DialOption) (*Client, error) {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("topom: dial %q: %w", target, err)
	}
	return &Client{
		Topom:        topompb.NewTopomClient(conn),
		ProxyControl: topompb.NewProxyControlClient(conn),
		conn:         conn,
	}, nil
}

// Conn returns the underlying connection (e.g. for the health service).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
