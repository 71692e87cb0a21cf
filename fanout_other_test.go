//go:build !(linux || darwin)

package wsroute_test

// fanOutClient is BenchmarkFanOut's client process, which this system does
// not have.
func fanOutClient(string) int { return 2 }
