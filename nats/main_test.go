package wsnats_test

import (
	"testing"

	"github.com/wsroute/wsroute/internal/leakcheck"
)

// TestMain fails the run when a goroutine of ours, of NATS (client or
// server), of the WebSocket transport or of net/http outlives the tests.
func TestMain(m *testing.M) { leakcheck.Main(m, "github.com/nats-io/") }
