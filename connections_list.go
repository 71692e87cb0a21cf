package wsroute

import "iter"

// ConnectionCount returns how many connections the router holds: those
// whose $connect has returned and whose $disconnect has not begun, closing
// ones included. It reads one counter, so it is cheap enough for every
// metrics scrape.
func (r *Router) ConnectionCount() int { return int(r.conns.n.Load()) }

// OpenConnections returns an iterator over the router's connections, the
// same set that [Router.ConnectionCount] counts: for each, its ID,
// connectedAt, lastActiveAt, identity (source IP and user agent) and what
// the authorizer granted. A connection that arrives or leaves during the
// iteration may or may not be seen; none is seen twice. The iteration holds
// no lock while it yields, so the loop body may post to, close or look up
// connections; its cost is one allocation per connection yielded, suited
// to an admin page or a periodic sweep.
//
// To act on a connection found this way, use its ConnectionID with
// [Router.Connections]; it may have closed meanwhile ([ErrGone]).
func (r *Router) OpenConnections() iter.Seq[*Connection] {
	return func(yield func(*Connection) bool) {
		r.conns.eachUntil(func(c *conn) bool { return yield(c.info()) })
	}
}

// eachUntil calls f for every connection, outside the shard locks, until f
// returns false.
func (t *connTable) eachUntil(f func(*conn) bool) {
	var batch []*conn
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for _, c := range s.m {
			batch = append(batch, c)
		}
		s.mu.RUnlock()
		for _, c := range batch {
			if !f(c) {
				return
			}
		}
		clear(batch)
		batch = batch[:0]
	}
}
