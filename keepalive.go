package wsroute

import (
	"context"
	"time"

	"github.com/coder/websocket"
)

// armTimerLocked schedules the next of the idle, duration and ping deadlines.
func (c *conn) armTimerLocked(now time.Time) {
	o := &c.r.opts
	var next time.Time
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if o.MaxConnectionDuration > 0 {
		consider(time.UnixMilli(c.connectedAt).Add(o.MaxConnectionDuration))
	}
	if o.IdleTimeout > 0 {
		consider(time.Unix(0, c.lastActive.Load()).Add(o.IdleTimeout))
	}
	if o.PingInterval > 0 {
		consider(time.Unix(0, c.nextPing))
	}
	if t := c.messageDeadline(); !t.IsZero() {
		consider(t)
	}
	if next.IsZero() {
		return
	}
	d := next.Sub(now)
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.onTimer)
	} else {
		c.timer.Reset(d)
	}
}

func (c *conn) stopTimerLocked() {
	if c.timer != nil {
		c.timer.Stop()
	}
}

// onTimer runs on a timer goroutine. Activity does not reset the timer: it
// fires at the earliest possible deadline and re-arms for the real one.
func (c *conn) onTimer() {
	now := time.Now()
	o := &c.r.opts
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	expired := ""
	switch {
	case o.MaxConnectionDuration > 0 && !now.Before(time.UnixMilli(c.connectedAt).Add(o.MaxConnectionDuration)):
		expired = "maximum connection duration"
	case o.IdleTimeout > 0 && !now.Before(time.Unix(0, c.lastActive.Load()).Add(o.IdleTimeout)):
		expired = "idle timeout"
	}
	slow := false
	if t := c.messageDeadline(); expired == "" && !t.IsZero() && !now.Before(t) {
		slow = true
		expired = "message timeout"
	}
	ping := expired == "" && o.PingInterval > 0 && now.UnixNano() >= c.nextPing
	if ping {
		c.nextPing = now.Add(o.PingInterval).UnixNano()
		c.r.wg.Add(1)
	}
	if expired == "" {
		c.armTimerLocked(now)
	}
	c.mu.Unlock()
	if slow {
		c.r.log.Info("wsroute: closing connection", "connectionId", c.id, "reason", expired)
		c.close(websocket.StatusPolicyViolation, reasonSlowMessage)
		// The read loop waits for the rest of the message: end the wait.
		_ = c.wire.SetReadDeadline(time.Unix(1, 0))
		return
	}
	if expired != "" {
		c.r.log.Info("wsroute: closing connection", "connectionId", c.id, "reason", expired)
		c.close(websocket.StatusGoingAway, reasonGoingAway)
		return
	}
	if ping {
		defer c.r.wg.Done()
		if since := c.writeSince.Load(); since != 0 && now.Sub(time.Unix(0, since)) > o.PongTimeout {
			// The socket has accepted no data for PongTimeout: the client
			// does not read. Checked apart from the ping, which a client that
			// keeps sending while handlers run could otherwise escape.
			c.r.log.Info("wsroute: client stopped reading", "connectionId", c.id)
			c.abort(websocket.StatusAbnormalClosure, "")
			return
		}
		handling := c.handling.Load()
		received := c.wire.bytesIn.Load()
		ctx, cancel := context.WithTimeout(context.Background(), o.PongTimeout)
		err := c.ping(ctx)
		cancel()
		if err != nil && c.isOpen() {
			if handling%2 == 1 || c.handling.Load() != handling {
				// A handler ran during the wait, so the read loop may have
				// left the pong unread: no verdict. The next ping decides.
				return
			}
			if c.wire.bytesIn.Load() != received {
				// Bytes came meanwhile: the client is alive, and its pong
				// may wait behind a message that is still arriving.
				return
			}
			c.r.log.Info("wsroute: client stopped answering pings", "connectionId", c.id, "err", err)
			c.abort(websocket.StatusAbnormalClosure, "")
		}
	}
}
