package wsroute_test

import (
	"context"
	"testing"
	"time"

	"github.com/wsroute/wsroute/internal/soak"
)

// TestSoakShort is the short soak (see cmd/wsroute-soak): connections come
// and go in every way there is while they post to each other by ID and by
// group; every $disconnect runs exactly once with the right code, every
// message to a live connection arrives once and in order, every malformed
// input gets its answer, and goroutines and heap return to their baseline.
// 2,000 connections over 30 s; 1,000 over 20 s under -race; 300 over 5 s
// with -short.
func TestSoakShort(t *testing.T) {
	cfg := soak.Config{Conns: 2000, Duration: 30 * time.Second, Parallel: 200, Stable: 50, Seed: 1, Log: t.Logf}
	if raceEnabled {
		cfg.Conns, cfg.Duration, cfg.Parallel, cfg.Stable = 1000, 20*time.Second, 100, 30
	}
	if testing.Short() {
		cfg.Conns, cfg.Duration, cfg.Parallel, cfg.Stable = 300, 5*time.Second, 50, 10
	}
	sum, err := soak.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + sum.String())
	if !sum.OK() {
		t.Fatalf("%d problems", len(sum.Problems))
	}
}
