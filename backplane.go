package wsroute

import "context"

// Backplane joins routers in several processes that serve one API, so that
// each reaches the connections the others hold. Set one in
// [Options.Backplane]; the NATS implementation lives in the module
// github.com/wsroute/wsroute/nats. Each router needs a Backplane of its own.
//
// With a Backplane, the router's [ConnectionManager] ([Router.Connections],
// [ConnectionsFromContext], and so [NewManagementHandler]) serves the
// connections the router holds itself, with no round trip, and hands every
// other ID to the Backplane's own ConnectionManager methods. Without one,
// nothing changes and nothing costs more.
//
// # What the router calls, and when
//
//   - Attach, once, from [New], with a ConnectionManager of the router's own
//     connections only: the Backplane serves the requests of other nodes with
//     it. It never consults the Backplane, so it cannot loop.
//   - Hold, when a connection becomes reachable (its $connect route has
//     returned, before the client learns it is connected), and Release when
//     it is no longer (its read loop has ended, before $disconnect runs).
//     They are called on the connection's goroutines. Hold may wait,
//     briefly and boundedly, for the broker to confirm, so that the
//     connection is reachable from every node before its client learns it is
//     connected; Release must not block. Release may come for an ID that was
//     never held.
//   - PostToConnection, GetConnection and DeleteConnection, for IDs the
//     router does not hold, from any goroutine. They return the errors of a
//     ConnectionManager as themselves or wrapped ([ErrGone] when no live
//     node holds the ID), and [ErrBackplaneUnavailable], wrapped, when the
//     broker cannot be reached. They return within ctx.
//   - Close, once, at the end of [Router.Shutdown]: the Backplane stops
//     serving requests for the router and releases what Attach set up.
//
// # Groups
//
// A Backplane that also implements [GroupBackplane] carries the router's
// [GroupManager] across nodes; without it, groups stay the router's own.
type Backplane interface {
	ConnectionManager

	// Attach gives the Backplane the router's own connections. It fails
	// when the Backplane is already attached to another router.
	Attach(local ConnectionManager) error

	// Hold announces that the router now holds connectionID.
	Hold(connectionID string)

	// Release announces that the router no longer holds connectionID.
	Release(connectionID string)

	// Close detaches the Backplane from the router.
	Close() error
}

// GroupBackplane is a [Backplane] that also carries groups across nodes:
// with one in [Options.Backplane], the router's [GroupManager]
// ([Router.Groups], [GroupsFromContext], the management API's @groups and
// @broadcast paths) covers the connections of every node.
//
//   - PostToGroup and Broadcast fan out to the router's own connections and
//     call PublishToGroup or PublishBroadcast once; each other node posts
//     what it receives to its own members (or connections). The
//     [PostResult] counts this router's members only, and has Published set.
//   - Members adds to the router's own members those of the other nodes,
//     which Members gathers within ctx.
//   - Join and Leave of an ID the router does not hold go to the Backplane's
//     Join and Leave, which ask the node that holds it, as PostToConnection
//     does. They return the errors of a GroupManager (Join: [ErrGone] when no
//     live node holds the ID) and [ErrBackplaneUnavailable], wrapped.
//
// The router calls GroupJoined when a group gets its first member among the
// router's connections, and GroupEmptied when it loses its last (a member
// that leaves, however it leaves, included), so that the Backplane listens
// for a group's posts only while the router has members to give them to.
// They are called outside the router's locks, so when joins and leaves of
// one group race, the calls may arrive out of order; but they alternate in
// truth, so a count kept per group (GroupJoined minus GroupEmptied) is 1
// exactly when the router has members, once the calls have returned.
// GroupJoined may wait, briefly and boundedly, for the broker to confirm, so
// that a member is reachable from every node when Join returns;
// GroupEmptied must not block.
//
// A GroupBackplane serves the group requests of other nodes with the
// GroupManager of the ConnectionManager given to Attach: it has a method
// Groups() GroupManager that covers the router's own connections only.
type GroupBackplane interface {
	Backplane

	// GroupJoined announces that group has its first member on the router.
	GroupJoined(group string)

	// GroupEmptied announces that group has lost its last member on the
	// router.
	GroupEmptied(group string)

	// Join makes a connection another node holds a member of group.
	Join(ctx context.Context, group, connectionID string) error

	// Leave ends the membership of group of a connection another node
	// holds. It returns nil when no node holds the connection.
	Leave(ctx context.Context, group, connectionID string) error

	// Members returns the members of group on the other nodes, in any
	// order. It fails rather than return a part of them.
	Members(ctx context.Context, group string) ([]string, error)

	// PublishToGroup sends data, with one publish, to the other nodes that
	// have members of group. It does not wait for them to deliver it.
	PublishToGroup(ctx context.Context, group string, data []byte) error

	// PublishBroadcast sends data, with one publish, to every other node,
	// which posts it to every connection it holds.
	PublishBroadcast(ctx context.Context, data []byte) error
}

// attachBackplane runs from New.
func (r *Router) attachBackplane() error {
	if b := r.opts.Backplane; b != nil {
		if gb, ok := b.(GroupBackplane); ok {
			r.groups.bp = gb
		}
		return b.Attach(&localConnections{r: r, heldOnly: true})
	}
	return nil
}

// remote is the Backplane that serves the IDs m's router does not hold, or
// nil.
func (m *localConnections) remote() Backplane {
	if m.heldOnly {
		return nil
	}
	return m.r.opts.Backplane
}

// closeBackplane runs at the end of Shutdown.
func (r *Router) closeBackplane() {
	if b := r.opts.Backplane; b != nil {
		if err := b.Close(); err != nil {
			r.log.Warn("wsroute: closing the backplane", "err", err)
		}
	}
}

// backplaneHold and backplaneRelease announce a connection's arrival and
// departure.
func (c *conn) backplaneHold() {
	if b := c.r.opts.Backplane; b != nil {
		b.Hold(c.id)
	}
}

func (c *conn) backplaneRelease() {
	if b := c.r.opts.Backplane; b != nil {
		b.Release(c.id)
	}
}
