package wsnats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroute/wsroute"
)

// Groups across nodes (wsroute.GroupBackplane).
//
// A node with members of a group subscribes, once, to
// wsroute.<API>.group.<name>, the name escaped into one subject token (see
// groupToken); every node subscribes to wsroute.<API>.broadcast. A post is
// one publish there, with the posting node's ID in front of the data so
// that it skips its own. The subscriptions deliver to one channel, drained
// by one goroutine that hands each post to the router's groups: posts
// queue frames without waiting for clients, so one goroutine keeps up, and
// it keeps each sender's posts in order.

var _ wsroute.GroupBackplane = (*Backplane)(nil)

const groupInboxSize = 8192 // posts waiting for the fan-out goroutine before NATS drops them

// groupSub is this node's subscription to a group's posts.
type groupSub struct {
	count int // GroupJoined minus GroupEmptied: 1 while the router has members
	sub   *nats.Subscription
}

// groupToken escapes a group name (1 to 128 bytes of UTF-8 without control
// characters) into one NATS subject token, reversibly: printable ASCII
// stays as it is except '.', '*', '>' and '%', and those and every other
// byte (space, non-ASCII) become %XX.
func groupToken(group string) string {
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	sb.Grow(len(group))
	for i := 0; i < len(group); i++ {
		switch c := group[i]; {
		case c <= ' ', c >= 0x7f, c == '.', c == '*', c == '>', c == '%':
			sb.WriteByte('%')
			sb.WriteByte(hex[c>>4])
			sb.WriteByte(hex[c&15])
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// groupName reverses groupToken; ok is false for a token groupToken cannot
// have made.
func groupName(token string) (string, bool) {
	if !strings.Contains(token, "%") {
		return token, true
	}
	unhex := func(c byte) (byte, bool) {
		switch {
		case '0' <= c && c <= '9':
			return c - '0', true
		case 'A' <= c && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	b := make([]byte, 0, len(token))
	for i := 0; i < len(token); i++ {
		if token[i] != '%' {
			b = append(b, token[i])
			continue
		}
		if i+2 >= len(token) {
			return "", false
		}
		hi, ok1 := unhex(token[i+1])
		lo, ok2 := unhex(token[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), true
}

func (b *Backplane) groupSubject(group string) string {
	return b.prefix + "group." + groupToken(group)
}

func (b *Backplane) broadcastSubject() string { return b.prefix + "broadcast" }

// GroupJoined subscribes to group's posts when the router has its first
// member, and waits, at most half a second, for the NATS server to confirm.
// The router calls it.
func (b *Backplane) GroupJoined(group string) {
	b.groupMu.Lock()
	if b.groupsClosed {
		b.groupMu.Unlock()
		return
	}
	gs := b.groupSubs[group]
	if gs == nil {
		gs = new(groupSub)
		b.groupSubs[group] = gs
	}
	gs.count++
	subscribed := false
	if gs.count > 0 && gs.sub == nil {
		sub, err := b.nc.ChanSubscribe(b.groupSubject(group), b.groupInbox)
		if err != nil {
			b.log.Error("wsnats: cannot subscribe for a group", "group", group, "err", err)
		} else {
			gs.sub, subscribed = sub, true
		}
	}
	if gs.count == 0 { // a GroupEmptied came first
		delete(b.groupSubs, group)
	}
	b.groupMu.Unlock()
	if subscribed && b.nc.Status() == nats.CONNECTED {
		if err := b.nc.FlushTimeout(holdFlushTimeout); err != nil {
			b.log.Warn("wsnats: NATS did not confirm a subscription", "group", group, "err", err)
		}
	}
}

// GroupEmptied unsubscribes from group's posts when the router has no
// member left. The router calls it.
func (b *Backplane) GroupEmptied(group string) {
	b.groupMu.Lock()
	defer b.groupMu.Unlock()
	if b.groupsClosed {
		return
	}
	gs := b.groupSubs[group]
	if gs == nil {
		gs = new(groupSub)
		b.groupSubs[group] = gs
	}
	gs.count--
	if gs.count <= 0 && gs.sub != nil {
		_ = gs.sub.Unsubscribe()
		gs.sub = nil
	}
	if gs.count == 0 {
		delete(b.groupSubs, group)
	}
}

// closeGroups unsubscribes from every group; Close calls it.
func (b *Backplane) closeGroups() {
	b.groupMu.Lock()
	defer b.groupMu.Unlock()
	b.groupsClosed = true
	for g, gs := range b.groupSubs {
		if gs.sub != nil {
			_ = gs.sub.Unsubscribe()
		}
		delete(b.groupSubs, g)
	}
}

// Join makes a connection another node holds a member of group, by asking
// that node. The router calls it for IDs it does not hold.
func (b *Backplane) Join(ctx context.Context, group, connectionID string) error {
	_, err := b.call(ctx, connectionID, opJoin, []byte(group))
	return err
}

// Leave ends the membership of group of a connection another node holds.
// It returns nil when no node holds it. The router calls it for IDs it
// does not hold.
func (b *Backplane) Leave(ctx context.Context, group, connectionID string) error {
	_, err := b.call(ctx, connectionID, opLeave, []byte(group))
	if errors.Is(err, wsroute.ErrGone) {
		return nil
	}
	return err
}

// Members asks every other node it knows of for its members of group, in
// parallel, and returns them all. It fails with
// [wsroute.ErrBackplaneUnavailable] when a node does not answer within ctx
// (or RequestTimeout): a part of the members would be a wrong answer. A
// node that dies is asked until DeadAfter has passed since its last
// heartbeat. Just after this node connects to NATS, it first waits (within
// ctx) for two HeartbeatIntervals, to have heard from every node.
func (b *Backplane) Members(ctx context.Context, group string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b.isClosed() {
		return nil, wsroute.ErrRouterClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.RequestTimeout)
		defer cancel()
	}
	nodes, err := b.members.expectedWait(ctx, 2*b.opts.HeartbeatInterval)
	if err != nil || len(nodes) == 0 {
		return nil, err
	}
	req := append([]byte{opMembers}, group...)
	type answer struct {
		ids []string
		err error
	}
	answers := make(chan answer, len(nodes))
	for _, n := range nodes {
		go func() {
			ids, err := b.askMembers(ctx, n, req)
			if err != nil {
				err = fmt.Errorf("node %s: %w", n, err)
			}
			answers <- answer{ids, err}
		}()
	}
	var (
		all    []string
		failed []error
	)
	for range nodes {
		a := <-answers
		if a.err != nil {
			failed = append(failed, a.err)
			continue
		}
		all = append(all, a.ids...)
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("%w: a node did not tell its members: %w",
			wsroute.ErrBackplaneUnavailable, errors.Join(failed...))
	}
	return all, nil
}

func (b *Backplane) askMembers(ctx context.Context, node string, req []byte) ([]string, error) {
	msg, err := b.request(ctx, b.prefix+"node."+node, req)
	if err != nil {
		return nil, err
	}
	body, err := decodeReply(msg.Data)
	if err != nil {
		return nil, err
	}
	var ids []string
	if err := json.Unmarshal(body, &ids); err != nil {
		return nil, fmt.Errorf("malformed answer: %w", err)
	}
	return ids, nil
}

// serveNode answers a ping (no data) and a request for this node's members
// of a group.
func (b *Backplane) serveNode(m *nats.Msg) {
	if len(m.Data) == 0 {
		_ = m.Respond(nil)
		return
	}
	var (
		body []byte
		err  error
	)
	switch gm := b.groups(); {
	case m.Data[0] != opMembers:
		err = fmt.Errorf("unknown request %q", m.Data[0])
	case gm == nil:
		body = []byte("[]")
	default:
		var ids []string
		if ids, err = gm.Members(context.Background(), string(m.Data[1:])); err == nil {
			body, err = json.Marshal(ids)
		}
	}
	if err := m.Respond(encodeReply(body, err)); err != nil {
		b.log.Warn("wsnats: cannot answer a request", "err", err)
	}
}

// groups returns the GroupManager of the router's own connections, or nil.
func (b *Backplane) groups() wsroute.GroupManager {
	b.mu.Lock()
	local := b.local
	b.mu.Unlock()
	if g, ok := local.(interface{ Groups() wsroute.GroupManager }); ok {
		return g.Groups()
	}
	return nil
}

// PublishToGroup publishes data once to the group's subject, for the other
// nodes with members. It does not wait for them: a node receives it at
// most once, and skips it when its NATS connection is down at the time.
func (b *Backplane) PublishToGroup(ctx context.Context, group string, data []byte) error {
	return b.publish(ctx, b.groupSubject(group), data)
}

// PublishBroadcast publishes data once for every other node.
func (b *Backplane) PublishBroadcast(ctx context.Context, data []byte) error {
	return b.publish(ctx, b.broadcastSubject(), data)
}

func (b *Backplane) publish(ctx context.Context, subject string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.isClosed() {
		return wsroute.ErrRouterClosed
	}
	if s := b.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("%w: NATS connection %s", wsroute.ErrBackplaneUnavailable, strings.ToLower(s.String()))
	}
	msg := make([]byte, 0, 1+len(b.node)+len(data))
	msg = append(msg, byte(len(b.node)))
	msg = append(msg, b.node...)
	msg = append(msg, data...)
	if err := b.nc.Publish(subject, msg); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			return fmt.Errorf("%w: %w", wsroute.ErrPayloadTooLarge, err)
		}
		return fmt.Errorf("%w: %w", wsroute.ErrBackplaneUnavailable, err)
	}
	return nil
}

// deliver hands another node's group post to the router's groups.
func (b *Backplane) deliver(m *nats.Msg) {
	if len(m.Data) == 0 || len(m.Data) < 1+int(m.Data[0]) {
		return
	}
	n := int(m.Data[0])
	if string(m.Data[1:1+n]) == b.node {
		return // this node's own post: its members have it already
	}
	data := m.Data[1+n:]
	gm := b.groups()
	if gm == nil {
		return
	}
	ctx := context.Background() // posts never wait for a client
	var err error
	if m.Subject == b.broadcastSubject() {
		_, err = gm.Broadcast(ctx, data)
	} else if token, ok := strings.CutPrefix(m.Subject, b.prefix+"group."); ok {
		if group, ok := groupName(token); ok {
			_, err = gm.PostToGroup(ctx, group, data)
		}
	}
	if err != nil {
		b.log.Warn("wsnats: cannot deliver a post of another node", "subject", m.Subject, "err", err)
	}
}

// expectedWait is expected, after waiting within ctx until this node has
// been connected for settle.
func (m *membership) expectedWait(ctx context.Context, settle time.Duration) ([]string, error) {
	for range 3 { // a reconnection while waiting starts the wait again
		m.mu.Lock()
		up, since := m.up, m.upSince
		m.mu.Unlock()
		wait := time.Until(since.Add(settle))
		if !up || wait <= 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w: connected to NATS too recently to know every node: %w",
				wsroute.ErrBackplaneUnavailable, ctx.Err())
		case <-t.C:
		}
	}
	return m.expected(time.Now(), settle)
}
