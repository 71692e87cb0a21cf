package wsroute_test

import (
	"os"
	"testing"

	"github.com/wsroute/wsroute/internal/leakcheck"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(fanOutEnv); spec != "" { // BenchmarkFanOut's client process
		os.Exit(fanOutClient(spec))
	}
	leakcheck.Main(m)
}
