package wsroute

import "context"

// LookupConnections returns the ConnectionManager that ctx carries, and
// whether it carries one: true in every handler a router runs, and in a
// context made by [ContextWithConnections]. Use it in code that also runs
// outside a router; handlers use [ConnectionsFromContext].
func LookupConnections(ctx context.Context) (ConnectionManager, bool) {
	cm, ok := ctx.Value(connectionsKey{}).(ConnectionManager)
	return cm, ok && cm != nil
}

// noConnections is what ConnectionsFromContext returns for a context that
// did not come from a router: every method panics with a message that says
// how to give the handler a ConnectionManager.
type noConnections struct{}

const noConnectionsMsg = "wsroute: this handler's ctx carries no ConnectionManager: it was called outside a router. " +
	"In a unit test, pass rec.Context(ctx) of a wsroutetest.Recorder (or wsroute.ContextWithConnections(ctx, cm)); " +
	"in code that may run outside a router, check with wsroute.LookupConnections"

func (noConnections) PostToConnection(context.Context, string, []byte) error {
	panic(noConnectionsMsg)
}

func (noConnections) GetConnection(context.Context, string) (*Connection, error) {
	panic(noConnectionsMsg)
}

func (noConnections) DeleteConnection(context.Context, string) error {
	panic(noConnectionsMsg)
}

func (noConnections) String() string { return "wsroute: no ConnectionManager (outside a router)" }
