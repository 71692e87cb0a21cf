package wsroute

import "context"

// ConnectionManager pushes to, inspects and closes connections by ID, as API
// Gateway's @connections API does. [Router.Connections] returns the one for a
// router's own connections; [NewManagementHandler] serves any ConnectionManager
// over HTTP. Implementations are safe for concurrent use.
type ConnectionManager interface {
	// PostToConnection sends data to the connection as one text frame. It
	// queues the frame and returns without waiting for the client. It returns
	// ErrGone, ErrLimitExceeded or ErrPayloadTooLarge.
	PostToConnection(ctx context.Context, connectionID string, data []byte) error

	// GetConnection describes the connection, or returns ErrGone.
	GetConnection(ctx context.Context, connectionID string) (*Connection, error)

	// DeleteConnection starts closing the connection with close code 1000 and
	// returns at once, without waiting for the client; the connection's
	// $disconnect route then runs with 1000 "Connection Closed Normally". It
	// returns ErrGone for unknown and already closing connections.
	DeleteConnection(ctx context.Context, connectionID string) error
}

type connectionsKey struct{}

// ConnectionsFromContext returns the ConnectionManager of the router that is
// running the handler ctx was passed to, or nil when ctx did not come from a
// router.
func ConnectionsFromContext(ctx context.Context) ConnectionManager {
	cm, _ := ctx.Value(connectionsKey{}).(ConnectionManager)
	return cm
}
