package wsnats

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/wsroute/wsroute"
)

// Ready reports whether the NATS server is reachable: it makes a round trip
// to the server within ctx. It returns [wsroute.ErrRouterClosed] once the
// Backplane is closed. [wsroute.Router.HealthHandler]'s /ready calls it.
func (b *Backplane) Ready(ctx context.Context) error {
	if b.isClosed() {
		return wsroute.ErrRouterClosed
	}
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("wsnats: NATS connection is %s", st)
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("wsnats: NATS server not reachable (%s): %w", b.nc.Status(), err)
	}
	return nil
}

var _ wsroute.Readier = (*Backplane)(nil)
