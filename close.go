package wsroute

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// ErrInvalidClose reports a close code that an endpoint may not send, or a
// close reason that does not fit a close frame. Errors wrapping it say which.
var ErrInvalidClose = errors.New("wsroute: invalid close code or reason")

// MaxCloseReasonLen is the longest close reason, in bytes, that fits a close
// frame beside its code (RFC 6455: 125 bytes of payload, 2 for the code).
const MaxCloseReasonLen = 123

// ConnectionCloser is implemented by a [ConnectionManager] that can close a
// connection with a code and reason of the caller's choosing, beside
// DeleteConnection's 1000. The router's own manager implements it; reach it
// with a type assertion on [ConnectionsFromContext], or call
// [Router.CloseConnection].
type ConnectionCloser interface {
	// CloseConnection starts closing the connection with the close frame
	// code and reason and returns at once, as DeleteConnection does; the
	// connection's $disconnect route then runs with that code and reason.
	// It returns an error wrapping ErrInvalidClose for a code outside
	// 1000-1003, 1007-1014 and 3000-4999 (RFC 6455 and IANA's registry;
	// 4000-4999 are for applications), or a reason over MaxCloseReasonLen
	// bytes or not UTF-8; and ErrGone for unknown and already closing
	// connections.
	CloseConnection(ctx context.Context, connectionID string, code int, reason string) error
}

var _ ConnectionCloser = (*localConnections)(nil)

// CloseConnection closes one of the router's connections with code and
// reason; see [ConnectionCloser].
func (r *Router) CloseConnection(ctx context.Context, connectionID string, code int, reason string) error {
	return r.cm.CloseConnection(ctx, connectionID, code, reason)
}

func (m *localConnections) CloseConnection(ctx context.Context, connectionID string, code int, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckCloseStatus(code, reason); err != nil {
		return err
	}
	c := m.r.conns.get(connectionID)
	if c == nil || !c.close(websocket.StatusCode(code), reason) {
		return ErrGone
	}
	return nil
}

// CheckCloseStatus reports, with an error wrapping [ErrInvalidClose], whether
// code and reason cannot go in a close frame that a server sends: a code
// outside 1000-1003, 1007-1014 and 3000-4999, or a reason over
// [MaxCloseReasonLen] bytes or not valid UTF-8. [ConnectionCloser]
// implementations call it; so can a caller, before closing.
func CheckCloseStatus(code int, reason string) error {
	valid := (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
	switch {
	case !valid:
		return fmt.Errorf("%w: code %d may not be sent (use 1000-1003, 1007-1014, or 4000-4999 for your own)", ErrInvalidClose, code)
	case len(reason) > MaxCloseReasonLen:
		return fmt.Errorf("%w: reason is %d bytes, more than %d", ErrInvalidClose, len(reason), MaxCloseReasonLen)
	case !utf8.ValidString(reason):
		return fmt.Errorf("%w: reason is not valid UTF-8", ErrInvalidClose)
	}
	return nil
}
