//go:build !unix

package wsroute_test

import "time"

// processCPU is not measured on this platform.
func processCPU() time.Duration { return 0 }
