package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/topom/topom/clients/go/topompb"
)

// Overview asks the topom at addr alone (no failover to another instance)
// for its overview: its role and the leader it knows.
func Overview(addr string) (*topompb.GetOverviewResponse, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return topompb.NewTopomClient(cc).GetOverview(ctx, &topompb.GetOverviewRequest{})
}

// WaitRole waits until the topom at addr reports role.
func WaitRole(t testing.TB, addr string, role topompb.InstanceRole, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, fmt.Sprintf("topom %s to be %s", addr, role), func() error {
		o, err := Overview(addr)
		if err != nil {
			return err
		}
		if o.GetRole() != role {
			return fmt.Errorf("role %s (leader %q)", o.GetRole(), o.GetLeaderAddr())
		}
		return nil
	})
}

// StartLeaderAndStandby starts two topom processes for one product on the
// etcd at endpoint, with the TOML config: the first is checked to lead, the
// second to stand by.
func StartLeaderAndStandby(t testing.TB, endpoint, config string) (leader, standby *Topom) {
	t.Helper()
	opts := TopomOptions{Etcd: endpoint, Config: config}
	leader = StartTopom(t, opts)
	WaitRole(t, leader.Addr, topompb.InstanceRole_INSTANCE_ROLE_LEADER, TopomStartTimeout)
	standby = StartTopom(t, opts)
	WaitRole(t, standby.Addr, topompb.InstanceRole_INSTANCE_ROLE_STANDBY, TopomStartTimeout)
	return leader, standby
}
