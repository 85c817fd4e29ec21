package topom

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/topom/topom/clients/go/topompb"
)

// errSendClosed is what a send after closeSend returns.
var errSendClosed = errors.New("topom: the watch stream's sending side is closed")

// streamSender lets two goroutines send on one stream (gRPC allows one
// sender at a time): the receive loop its ACKs and NACKs, the beat goroutine
// heartbeats and stats.
type streamSender struct {
	mu     sync.Mutex
	stream topompb.ProxyControl_WatchSlotsClient
	closed bool
}

func (s *streamSender) send(m *topompb.WatchSlotsRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errSendClosed
	}
	return s.stream.Send(m)
}

// closeSend ends the sending side (once); later sends fail with errSendClosed.
func (s *streamSender) closeSend() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		_ = s.stream.CloseSend()
	}
}

// beat sends a numbered heartbeat every hb and stats every StatsInterval
// until ctx ends, the sending side is closed (nil) or a send fails.
func (w *SlotWatcher) beat(ctx context.Context, tx *streamSender, hb time.Duration) error {
	defer tx.closeSend()
	t := time.NewTicker(hb)
	defer t.Stop()
	var statsC <-chan time.Time
	if w.cfg.Stats != nil {
		st := time.NewTicker(w.cfg.StatsInterval)
		defer st.Stop()
		statsC = st.C
	}
	var seq uint64
	heartbeat := func() error {
		seq++
		// Taken before a send that may wait for an ACK being sent: the lease
		// then counts from a little earlier, never later.
		w.lease.heartbeatSent(seq, time.Now())
		return tx.send(&topompb.WatchSlotsRequest{Kind: &topompb.WatchSlotsRequest_Heartbeat{Heartbeat: &topompb.ProxyHeartbeat{Seq: seq}}})
	}
	err := heartbeat()
	for err == nil {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			err = heartbeat()
		case <-statsC:
			if s := w.cfg.Stats(); s != nil {
				if s.Time == nil {
					s.Time = timestamppb.Now()
				}
				err = tx.send(&topompb.WatchSlotsRequest{Kind: &topompb.WatchSlotsRequest_Stats{Stats: s}})
			}
		}
	}
	if errors.Is(err, errSendClosed) {
		return nil
	}
	return err
}
