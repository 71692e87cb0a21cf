//go:build !(linux || darwin)

package soak

import "math"

// RaiseOpenFileLimit does nothing on this system, and reports no limit.
func RaiseOpenFileLimit() uint64 { return math.MaxUint64 }
