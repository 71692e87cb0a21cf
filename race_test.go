//go:build race

package wsroute_test

// raceEnabled is true in a binary built with -race.
const raceEnabled = true
