package wsnats

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroute/wsroute"
)

// membership is what a node knows of the other nodes of its API: when it
// last heard from each. It is not a registry of connections: an entry only
// says whom to ask before calling a connection gone, and it expires.
type membership struct {
	mu        sync.Mutex
	deadAfter time.Duration
	seen      map[string]time.Time // node ID → last heartbeat
	up        bool                 // the NATS connection is connected
	upSince   time.Time
}

func (m *membership) init(deadAfter time.Duration) {
	m.deadAfter = deadAfter
	m.seen = make(map[string]time.Time)
}

// connected records a (re)connection. Every node known before is given a
// fresh DeadAfter to show up: while this node was cut off it heard nobody,
// which says nothing about them.
func (m *membership) connected(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.up, m.upSince = true, now
	for n := range m.seen {
		m.seen[n] = now
	}
}

func (m *membership) disconnected() {
	m.mu.Lock()
	m.up = false
	m.mu.Unlock()
}

func (m *membership) heard(node string, alive bool, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if alive {
		m.seen[node] = now
	} else {
		delete(m.seen, node)
	}
}

// expected returns the nodes that must answer a ping before an ID is called
// gone, forgetting those silent for DeadAfter. It fails while this node is
// disconnected, or connected too recently (settle) to have heard everyone.
func (m *membership) expected(now time.Time, settle time.Duration) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.up {
		return nil, fmt.Errorf("%w: not connected to NATS", wsroute.ErrBackplaneUnavailable)
	}
	if now.Sub(m.upSince) < settle {
		return nil, fmt.Errorf("%w: connected to NATS too recently to know every node", wsroute.ErrBackplaneUnavailable)
	}
	nodes := make([]string, 0, len(m.seen))
	for n, t := range m.seen {
		if now.Sub(t) >= m.deadAfter {
			delete(m.seen, n)
			continue
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// heard handles a heartbeat or a goodbye.
func (b *Backplane) heard(msg *nats.Msg) {
	if len(msg.Data) < 2 {
		return
	}
	node := string(msg.Data[1:])
	if node == b.node {
		return
	}
	b.members.heard(node, msg.Data[0] == beatAlive, time.Now())
}

// beat publishes this node's heartbeat or goodbye.
func (b *Backplane) beat(kind byte) {
	_ = b.nc.Publish(b.prefix+"nodes", append([]byte{kind}, b.node...))
}

func (b *Backplane) heartbeat() {
	defer b.wg.Done()
	t := time.NewTicker(b.opts.HeartbeatInterval)
	defer t.Stop()
	b.beat(beatAlive)
	for {
		select {
		case <-b.done:
			return
		case now := <-t.C:
			b.beat(beatAlive)
			b.bury(now.Add(-b.opts.DeadAfter))
		}
	}
}

// allPresent checks that every node this one knows is alive answers a ping,
// so that an ID no node answers for is truly gone and not held by a node cut
// off from NATS for a moment.
func (b *Backplane) allPresent(ctx context.Context) error {
	nodes, err := b.members.expected(time.Now(), 2*b.opts.HeartbeatInterval)
	if err != nil || len(nodes) == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.HeartbeatInterval)
	defer cancel()
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() {
			_, err := b.nc.RequestWithContext(ctx, b.prefix+"node."+n, nil)
			if err != nil {
				err = fmt.Errorf("node %s: %w", n, err)
			}
			errs <- err
		}()
	}
	var failed []error
	for range nodes {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: a node that may hold the connection does not answer: %w",
			wsroute.ErrBackplaneUnavailable, errors.Join(failed...))
	}
	return nil
}
