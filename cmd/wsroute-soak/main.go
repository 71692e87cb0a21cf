// Command wsroute-soak runs a wsroute router under churn on loopback and
// checks that nothing is lost: connections connect, talk, join and leave
// groups, post to each other by ID and by group, and end in every way there
// is (close frames, TCP resets, DeleteConnection, the idle timeout, oversize,
// binary and invalid UTF-8 frames, after deep JSON, non-JSON, a handler panic
// and an unknown route), while the server runs on. It prints a summary and
// exits 1 when a check failed.
//
//	go run ./cmd/wsroute-soak                            # 2,000 connections, 30 s
//	go run ./cmd/wsroute-soak -full                      # 10,000 connections, 10 minutes
//	go run ./cmd/wsroute-soak -conns 4000 -duration 1m
//
// It raises its open-file limit to the hard limit itself. Server and clients
// run in this one process, so each open connection takes two descriptors.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/wsroute/wsroute/internal/soak"
)

func main() {
	var cfg soak.Config
	full := flag.Bool("full", false, "the full run: 10,000 connections over 10 minutes, 1,000 at once, 200 stable")
	flag.IntVar(&cfg.Conns, "conns", 2000, "connections that come and go")
	flag.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long they keep coming")
	flag.IntVar(&cfg.Parallel, "parallel", 200, "at most this many churning connections open at once")
	flag.IntVar(&cfg.Stable, "stable", 50, "connections open for the whole run")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	quiet := flag.Bool("q", false, "print only the summary")
	flag.Parse()
	if *full {
		cfg.Conns, cfg.Duration, cfg.Parallel, cfg.Stable = 10000, 10*time.Minute, 1000, 200
	}
	if !*quiet {
		cfg.Log = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sum, err := soak.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Print(sum)
	if !sum.OK() {
		os.Exit(1)
	}
}
