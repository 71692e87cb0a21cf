package wsroute

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
// Group posts are not part of the interface yet. The plan: a Backplane that
// also implements a group interface is told when a group gets its first
// member on this router and loses its last, subscribes once per such group,
// and sends a post to a group with one publish; each router then fans out to
// its own members.
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

// attachBackplane runs from New.
func (r *Router) attachBackplane() error {
	if b := r.opts.Backplane; b != nil {
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
