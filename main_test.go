package wsroute_test

import (
	"testing"

	"github.com/wsroute/wsroute/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }
