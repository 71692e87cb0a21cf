//go:build !race

package wsroute_test

const raceEnabled = false
