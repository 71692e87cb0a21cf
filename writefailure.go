package wsroute

import (
	"time"

	"github.com/coder/websocket"
)

// writeFailed aborts the connection after a failed write: the socket is
// unusable. A write usually fails because the read side is closing the
// socket (the client's close frame, answered by the read loop, or a frame the
// read side refused), so 1006 is recorded only as a guess: when the read loop
// ends with a cause of its own, finish reports that cause instead. A close
// the router had already started keeps its code.
func (c *conn) writeFailed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateOpen {
		c.state, c.code, c.reason, c.guessed = stateClosing, websocket.StatusAbnormalClosure, "", true
		c.stopTimerLocked()
		c.startWriterLocked()
	}
	if c.started {
		_ = c.wire.SetDeadline(time.Unix(1, 0))
	}
}

// releaseFrames wakes whoever waits for frames that will never be written.
func releaseFrames(fs []frame) {
	for _, f := range fs {
		if f.done != nil {
			close(f.done)
		}
	}
}
