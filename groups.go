package wsroute

import (
	"context"
	"errors"
	"slices"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// GroupManager puts connections in named groups and posts to every member of
// a group, or to every connection, at once. API Gateway has no groups; this
// is what its users build by hand with a table and one PostToConnection per
// member. [Router.Groups] returns the one of a router's own connections, and
// handlers reach it with [GroupsFromContext].
//
// # Membership
//
// A group exists while it has members: joining creates it, and the last
// member leaving ends it. A connection may belong to any number of groups.
// Membership ends by itself when the connection leaves, however it leaves
// (close frame, network drop, DeleteConnection, a timeout, a limit, Shutdown):
// by the time its $disconnect route runs, it is a member of no group.
//
// # Posts
//
// A group post queues one frame for every member, copying the data once and
// sharing it between members. It never waits for a client: a member whose
// send queue is full ([Options.SendQueueSize], [Options.SendQueueBytes]) is
// skipped and counted, the others get the frame. The frames are written by a
// small pool of writer goroutines (about GOMAXPROCS) shared by all of the
// router's connections, never by a goroutine per member per post; a member
// whose socket accepts no data holds one writer for 10 to 20
// milliseconds before the pool replaces that writer, which is left to finish
// with that member alone.
//
// The frames one caller posts reach each member in the order they were
// posted, in order with the member's other frames (PostToConnection and
// replies) posted after them.
//
// # Across nodes
//
// With a [GroupBackplane] in [Options.Backplane] (such as the NATS one),
// groups span the nodes of the API: Join and Leave take the ID of a
// connection any node holds, Members gathers every node's members within
// ctx, and PostToGroup and Broadcast reach the members (or connections) of
// every node with one publish, each node fanning out to its own. The result
// of a post counts this router's members only (see [PostResult]); when the
// publish fails, the post returns that count with an error wrapping
// [ErrBackplaneUnavailable]. Membership stays with the node holding the
// connection: it ends when the connection leaves, or with its node.
//
// # Names
//
// A group name is 1 to 128 bytes of UTF-8 without control characters;
// anything else fails with [ErrInvalidGroup]. Names are case-sensitive.
//
// Implementations are safe for concurrent use; every method may be called
// from any goroutine, handlers included.
type GroupManager interface {
	// Join makes the connection a member of group. Joining a group it is a
	// member of already does nothing. It returns ErrGone for an unknown,
	// closing or closed connection, and ErrInvalidGroup for an invalid name.
	// As with PostToConnection, a connection is unknown until its $connect
	// route has returned: join it from its first message, or from outside.
	Join(ctx context.Context, group, connectionID string) error

	// Leave ends the connection's membership of group. It returns nil
	// whether or not the connection was a member (or still exists), and
	// ErrInvalidGroup for an invalid name.
	Leave(ctx context.Context, group, connectionID string) error

	// Members returns the IDs of group's members, sorted; none for a group
	// without members.
	Members(ctx context.Context, group string) ([]string, error)

	// PostToGroup sends data to every member of group as one text frame
	// (binary when data is not valid UTF-8), as PostToConnection does to
	// one connection. It queues the frames and returns without waiting for
	// any client, with how many members got the frame and how many were
	// skipped. It returns ErrPayloadTooLarge (nothing sent) and
	// ErrInvalidGroup; a group without members gives a zero result.
	PostToGroup(ctx context.Context, group string, data []byte) (PostResult, error)

	// Broadcast is PostToGroup to every open connection, members of groups
	// or not.
	Broadcast(ctx context.Context, data []byte) (PostResult, error)
}

// PostResult is what a group post or a broadcast did.
type PostResult struct {
	// Delivered counts the members the frame was queued for: they get it
	// unless they close first, as after a PostToConnection that returned nil.
	Delivered int `json:"delivered"`
	// Skipped counts the members whose send queue was full (a client that
	// reads too slowly): they do not get the frame.
	Skipped int `json:"skipped"`
	// Gone counts the members found closing: their $disconnect has not run
	// yet, and they do not get the frame.
	Gone int `json:"gone"`
	// Published reports that the post was also sent, with one publish, to
	// the other nodes of the API through a [GroupBackplane]; each posts it
	// to its own members, at most once, uncounted. The counts above are
	// this router's members only.
	Published bool `json:"published,omitempty"`
}

// ErrInvalidGroup reports a group name that is empty, longer than 128 bytes,
// not UTF-8, or that contains control characters. The management API
// answers it with 400 BadRequestException.
var ErrInvalidGroup = errors.New("wsroute: invalid group name")

const maxGroupNameLength = 128

func validGroupName(name string) bool {
	if name == "" || len(name) > maxGroupNameLength || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// Groups returns the GroupManager of the router's own connections, and with
// a [GroupBackplane] of every node's (see GroupManager). Handlers can also
// reach it with [GroupsFromContext].
func (r *Router) Groups() GroupManager { return (*localGroups)(r) }

// GroupsFromContext returns the GroupManager of the router that is running
// the handler ctx was passed to, or nil when ctx did not come from a router
// (or carries a ConnectionManager that has no groups). It finds it through
// [ConnectionsFromContext]: a ConnectionManager with a method
// Groups() GroupManager, such as a router's, provides one.
func GroupsFromContext(ctx context.Context) GroupManager {
	return groupsOf(ConnectionsFromContext(ctx))
}

// groupsOf returns the GroupManager that comes with cm, or nil.
func groupsOf(cm ConnectionManager) GroupManager {
	if g, ok := cm.(interface{ Groups() GroupManager }); ok {
		return g.Groups()
	}
	return nil
}

// Groups returns the router's GroupManager, so that [GroupsFromContext] and
// [NewManagementHandler] find it through the ConnectionManager.
// The Backplane's ConnectionManager (heldOnly) has the GroupManager of the
// router's own connections only.
func (m *localConnections) Groups() GroupManager {
	if m.heldOnly {
		return (*heldGroups)(m.r)
	}
	return m.r.Groups()
}

// groupTable is a router's group membership and its writer pool. Its zero
// value is ready to use.
type groupTable struct {
	mu      sync.RWMutex
	members map[string]map[*conn]struct{} // group → members
	joined  map[*conn]map[string]struct{} // member → its groups

	pool writerPool

	// bp, set before the router has connections, carries groups across
	// nodes; nil without a GroupBackplane.
	bp GroupBackplane
}

// leaveAll ends every membership of c. It runs when c's read loop ends, after
// c's state is stateClosed, so no Join can add c again.
func (t *groupTable) leaveAll(c *conn) {
	t.mu.RLock()
	_, in := t.joined[c]
	t.mu.RUnlock()
	if !in {
		return
	}
	var emptied []string
	t.mu.Lock()
	for g := range t.joined[c] {
		if t.removeLocked(g, c) && t.bp != nil {
			emptied = append(emptied, g)
		}
	}
	delete(t.joined, c)
	t.mu.Unlock()
	for _, g := range emptied {
		t.bp.GroupEmptied(g)
	}
}

// removeLocked removes c from group and reports whether group is left
// without members.
func (t *groupTable) removeLocked(group string, c *conn) (emptied bool) {
	m := t.members[group]
	delete(m, c)
	if len(m) == 0 {
		delete(t.members, group)
		return true
	}
	return false
}

// snapshot appends the members of group to dst.
func (t *groupTable) snapshot(dst []*conn, group string) []*conn {
	t.mu.RLock()
	for c := range t.members[group] {
		dst = append(dst, c)
	}
	t.mu.RUnlock()
	return dst
}

// localGroups is the GroupManager of a Router: its own connections, and
// with a GroupBackplane those of every node.
type localGroups Router

// heldGroups is the GroupManager of a Router's own connections only, which
// a GroupBackplane serves other nodes with.
type heldGroups Router

var (
	_ GroupManager = (*localGroups)(nil)
	_ GroupManager = (*heldGroups)(nil)
)

func (g *localGroups) Join(ctx context.Context, group, connectionID string) error {
	r := (*Router)(g)
	return r.join(ctx, group, connectionID, r.groups.bp)
}

func (g *localGroups) Leave(ctx context.Context, group, connectionID string) error {
	r := (*Router)(g)
	return r.leave(ctx, group, connectionID, r.groups.bp)
}

func (g *localGroups) Members(ctx context.Context, group string) ([]string, error) {
	r := (*Router)(g)
	return r.members(ctx, group, r.groups.bp)
}

func (g *localGroups) PostToGroup(ctx context.Context, group string, data []byte) (PostResult, error) {
	r := (*Router)(g)
	return r.postToGroup(ctx, group, data, r.groups.bp)
}

func (g *localGroups) Broadcast(ctx context.Context, data []byte) (PostResult, error) {
	r := (*Router)(g)
	return r.broadcast(ctx, data, r.groups.bp)
}

func (g *heldGroups) Join(ctx context.Context, group, connectionID string) error {
	return (*Router)(g).join(ctx, group, connectionID, nil)
}

func (g *heldGroups) Leave(ctx context.Context, group, connectionID string) error {
	return (*Router)(g).leave(ctx, group, connectionID, nil)
}

func (g *heldGroups) Members(ctx context.Context, group string) ([]string, error) {
	return (*Router)(g).members(ctx, group, nil)
}

func (g *heldGroups) PostToGroup(ctx context.Context, group string, data []byte) (PostResult, error) {
	return (*Router)(g).postToGroup(ctx, group, data, nil)
}

func (g *heldGroups) Broadcast(ctx context.Context, data []byte) (PostResult, error) {
	return (*Router)(g).broadcast(ctx, data, nil)
}

// join, leave, members, postToGroup and broadcast serve the router's own
// connections, and hand the rest of the work to remote unless it is nil.

func (r *Router) join(ctx context.Context, group, connectionID string, remote GroupBackplane) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validGroupName(group) {
		return ErrInvalidGroup
	}
	c := r.conns.get(connectionID)
	if c == nil {
		if remote != nil {
			return remote.Join(ctx, group, connectionID)
		}
		return ErrGone
	}
	t := &r.groups
	first, err := t.add(group, c)
	if first && t.bp != nil {
		t.bp.GroupJoined(group)
	}
	return err
}

// add makes c a member of group, and reports whether it is the first.
func (t *groupTable) add(group string, c *conn) (first bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Checked under t.mu: once c is closed, conn.finish takes t.mu to
	// remove it, so it is either refused here or removed there.
	if !c.isOpen() {
		return false, ErrGone
	}
	if t.members == nil {
		t.members = make(map[string]map[*conn]struct{})
		t.joined = make(map[*conn]map[string]struct{})
	}
	m := t.members[group]
	if m == nil {
		m = make(map[*conn]struct{})
		t.members[group] = m
		first = true
	}
	m[c] = struct{}{}
	j := t.joined[c]
	if j == nil {
		j = make(map[string]struct{}, 1)
		t.joined[c] = j
	}
	j[group] = struct{}{}
	return first, nil
}

func (r *Router) leave(ctx context.Context, group, connectionID string, remote GroupBackplane) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validGroupName(group) {
		return ErrInvalidGroup
	}
	c := r.conns.get(connectionID)
	if c == nil {
		if remote != nil {
			if err := remote.Leave(ctx, group, connectionID); !errors.Is(err, ErrGone) {
				return err
			}
		}
		return nil // a connection that left is in no group
	}
	t := &r.groups
	if t.remove(group, c) && t.bp != nil {
		t.bp.GroupEmptied(group)
	}
	return nil
}

// remove ends c's membership of group, and reports whether group is left
// without members.
func (t *groupTable) remove(group string, c *conn) (emptied bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j := t.joined[c]
	if _, ok := j[group]; !ok {
		return false
	}
	delete(j, group)
	if len(j) == 0 {
		delete(t.joined, c)
	}
	return t.removeLocked(group, c)
}

func (r *Router) members(ctx context.Context, group string, remote GroupBackplane) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validGroupName(group) {
		return nil, ErrInvalidGroup
	}
	t := &r.groups
	t.mu.RLock()
	ids := make([]string, 0, len(t.members[group]))
	for c := range t.members[group] {
		ids = append(ids, c.id)
	}
	t.mu.RUnlock()
	if remote != nil {
		others, err := remote.Members(ctx, group)
		if err != nil {
			return nil, err
		}
		ids = append(ids, others...)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

func (r *Router) postToGroup(ctx context.Context, group string, data []byte, remote GroupBackplane) (PostResult, error) {
	if err := ctx.Err(); err != nil {
		return PostResult{}, err
	}
	if !validGroupName(group) {
		return PostResult{}, ErrInvalidGroup
	}
	if len(data) > r.opts.MaxPostSize {
		return PostResult{}, ErrPayloadTooLarge
	}
	buf := getConnSlice()
	*buf = r.groups.snapshot(*buf, group)
	res := r.fanOut(buf, data)
	if remote == nil {
		return res, nil
	}
	err := remote.PublishToGroup(ctx, group, data)
	res.Published = err == nil
	return res, err
}

func (r *Router) broadcast(ctx context.Context, data []byte, remote GroupBackplane) (PostResult, error) {
	if err := ctx.Err(); err != nil {
		return PostResult{}, err
	}
	if len(data) > r.opts.MaxPostSize {
		return PostResult{}, ErrPayloadTooLarge
	}
	buf := getConnSlice()
	for i := range r.conns.shards {
		s := &r.conns.shards[i]
		s.mu.RLock()
		for _, c := range s.m {
			*buf = append(*buf, c)
		}
		s.mu.RUnlock()
	}
	res := r.fanOut(buf, data)
	if remote == nil {
		return res, nil
	}
	err := remote.PublishBroadcast(ctx, data)
	res.Published = err == nil
	return res, err
}

// fanOut queues one frame, made once, for every connection of *to, and has
// the writer pool write to those that have no writer. It takes to over: the
// members handed to the pool stay in it until the pool is done with them.
func (r *Router) fanOut(to *[]*conn, data []byte) PostResult {
	var res PostResult
	if len(*to) == 0 {
		putConnSlice(to)
		return res
	}
	f := frame{binary: !utf8.Valid(data)}
	if r.opts.Compression == CompressionDisabled {
		// Encoded once and written to every member as the same bytes.
		b := prepareFrame(f.binary, data)
		f.data, f.prepared = unsafe.String(unsafe.SliceData(b), len(b)), true
	} else {
		f.data = string(data)
	}
	n := 0 // (*to)[:n] are the members handed to the pool
	for _, c := range *to {
		handoff, err := c.enqueueShared(f)
		c.observeFrame(true, f.size(), 0, err)
		switch {
		case err == nil:
			res.Delivered++
			if handoff {
				(*to)[n] = c
				n++
			}
		case errors.Is(err, ErrLimitExceeded):
			res.Skipped++
		default:
			res.Gone++
		}
	}
	clear((*to)[n:])
	*to = (*to)[:n]
	r.groups.pool.submit(r, to)
	return res
}

// enqueueShared queues f as enqueueLocked does. When no goroutine is writing
// to c it reserves the writing for the writer pool and reports handoff: the
// caller must then submit c to the pool, which runs its writeLoop.
//
// An idle connection's queue is nil, and appending to it would allocate once
// per member and post: f goes into c.slot instead. No batch of a writer can
// hold c.slot while c.writing is false, and the writeLoop clears it as it
// ends, so that it keeps no payload alive.
func (c *conn) enqueueShared(f frame) (handoff bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return false, ErrGone
	}
	o := &c.r.opts
	if len(c.queue) >= o.SendQueueSize || c.queued+f.size() > o.SendQueueBytes {
		return false, ErrLimitExceeded
	}
	if cap(c.queue) == 0 && !c.writing {
		c.queue = c.slot[:0:1]
	}
	c.queue = append(c.queue, f)
	c.queued += f.size()
	if c.writing {
		return false, nil
	}
	c.writing = true
	c.r.wg.Add(1) // writeLoop's count; the read loop's is held while state < stateClosed
	return true, nil
}

// connSlices recycles the member lists of group posts.
var connSlices = sync.Pool{New: func() any { return new([]*conn) }}

const maxPooledConnSlice = 1 << 16

func getConnSlice() *[]*conn { return connSlices.Get().(*[]*conn) }

func putConnSlice(p *[]*conn) {
	if cap(*p) > maxPooledConnSlice {
		return
	}
	clear(*p)
	*p = (*p)[:0]
	connSlices.Put(p)
}
