package wsroute

import "errors"

// Errors returned by a [ConnectionManager]. Compare with [errors.Is]: a
// manager that reaches connections over a network wraps them.
var (
	// ErrGone reports that the connection ID is unknown, that its $connect
	// route has not returned yet, or that the connection is closed or closing.
	// The management API answers it with 410 GoneException.
	ErrGone = errors.New("wsroute: gone")

	// ErrLimitExceeded reports that the connection's send queue is full: the
	// client is not reading as fast as messages are posted to it. Nothing was
	// queued. The management API answers it with 429 LimitExceededException.
	ErrLimitExceeded = errors.New("wsroute: limit exceeded")

	// ErrPayloadTooLarge reports that the data posted is larger than
	// [Options.MaxPostSize]. The management API answers it with 413
	// PayloadTooLargeException.
	ErrPayloadTooLarge = errors.New("wsroute: payload too large")

	// ErrBackplaneUnavailable reports that a [Backplane] could not reach the
	// node that may hold the connection (the broker is unreachable, or a node
	// is cut off and not yet known to be dead). The connection may well be
	// alive, and a post may have been delivered if only the answer was lost.
	// The management API answers it with 503 ServiceUnavailableException.
	ErrBackplaneUnavailable = errors.New("wsroute: backplane unavailable")
)

// Errors an [Options.Authorizer] returns to refuse a connection.
var (
	// ErrUnauthorized refuses the handshake with 401 Unauthorized, as an API
	// Gateway Lambda authorizer does when it throws "Unauthorized".
	ErrUnauthorized = errors.New("wsroute: unauthorized")

	// ErrAccessDenied refuses the handshake with 403 Forbidden, as an API
	// Gateway authorizer does when its policy denies the request.
	ErrAccessDenied = errors.New("wsroute: access denied")
)

// ErrRouterClosed is returned by [Router.Shutdown] when it is called again.
var ErrRouterClosed = errors.New("wsroute: router closed")
