// Command bench measures wsroute against raw coder/websocket (its transport,
// with the read loop detached from the HTTP handler — the floor — and with
// the naive loop in the handler), gorilla/websocket and olahol/melody, in one
// run: the same workloads, against each server in turn, in alternating
// trials, and prints a Markdown table per workload with each server's median
// over the trials and its ratio to wsroute.
//
// Every server runs in a process of its own (this program started again with
// -serve=<implementation>) on a loopback port; the load generator is this
// process. Server CPU time is the server process's rusage, its memory its
// resident set and Go heap, read over a control endpoint before and after
// each measurement.
//
// Workloads (-workloads):
//
//   - echo: -conns connections, each writing a ~100-byte JSON frame routed by
//     $request.body.action and waiting for the answer: messages/s, p50/p99
//     latency, server CPU µs per message, server RSS.
//   - fanout: one frame to each of the -fanout connection counts, by each
//     library's own broadcast: time until the last client has it, server CPU
//     per recipient, heap left behind.
//   - idle: -idle open idle connections: RSS, Go heap and stacks, and
//     goroutines per connection.
//   - connect: -connect-workers dialers connecting, sending one echo and
//     closing, with the token checked in $connect (wsroute) or the upgrade
//     handler (the others): connections/s and server CPU per connection.
//   - mgmt: wsroute only: pushes/s through POST /@connections/{id} of the
//     management API against in-process PostToConnection.
//
// Run it from the bench folder, on an otherwise quiet machine:
//
//	go run . -trials=3
//
// It needs Linux (rusage, /proc) and raises its open-file limit itself.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	if os.Getenv(childEnv) != "" || len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "-serve=") {
		os.Exit(serveMain(os.Args[1:]))
	}
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if _, err := run(cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg := &config{}
	var workloadList, implList, fanout string
	fs.IntVar(&cfg.Trials, "trials", 3, "alternating trials of every workload and implementation")
	fs.StringVar(&workloadList, "workloads", "echo,fanout,idle,connect,mgmt", "workloads to run, comma-separated")
	fs.StringVar(&implList, "impls", "wsroute,coder,coder-naive,gorilla,melody", "implementations to compare, comma-separated; wsroute and coder are always included")
	fs.IntVar(&cfg.EchoConns, "conns", 100, "connections of the echo workload")
	fs.StringVar(&fanout, "fanout", "1000,10000", "connection counts of the fan-out workload, comma-separated")
	fs.IntVar(&cfg.FanoutRounds, "rounds", 5, "fan-out rounds per trial")
	fs.IntVar(&cfg.IdleConns, "idle", 10000, "connections of the idle-memory workload")
	fs.DurationVar(&cfg.Duration, "duration", 3*time.Second, "length of the echo, connect and mgmt measurements")
	fs.IntVar(&cfg.ConnectWorkers, "connect-workers", 16, "concurrent dialers of the connect workload")
	fs.IntVar(&cfg.ConnectMax, "connect-max", 20000, "most connections the connect workload makes per trial (ephemeral ports)")
	fs.IntVar(&cfg.MgmtConns, "mgmt-conns", 100, "connections the mgmt workload pushes to")
	fs.IntVar(&cfg.MgmtWorkers, "mgmt-workers", 16, "concurrent pushers of the mgmt workload")
	fs.IntVar(&cfg.DialWorkers, "dial-workers", 64, "concurrent dialers while opening connections")
	fs.StringVar(&cfg.CPUProfileDir, "cpuprofile", "", "write each server process's CPU profile to this directory, as <workload>-<impl>-<trial>.pprof")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Workloads = splitList(workloadList)
	cfg.Impls = splitList(implList)
	// wsroute is the reference of every table, and coder its floor.
	impls := []string{"wsroute", "coder"}
	for _, impl := range cfg.Impls {
		if !contains(impls, impl) {
			impls = append(impls, impl)
		}
	}
	cfg.Impls = impls
	for _, f := range splitList(fanout) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-fanout: %q is not a positive count", f)
		}
		cfg.Fanout = append(cfg.Fanout, n)
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"trials", cfg.Trials}, {"conns", cfg.EchoConns}, {"rounds", cfg.FanoutRounds}, {"idle", cfg.IdleConns},
		{"connect-workers", cfg.ConnectWorkers}, {"connect-max", cfg.ConnectMax}, {"mgmt-conns", cfg.MgmtConns},
		{"mgmt-workers", cfg.MgmtWorkers}, {"dial-workers", cfg.DialWorkers}} {
		if v.n <= 0 {
			return nil, fmt.Errorf("-%s must be positive", v.name)
		}
	}
	if cfg.Duration <= 0 {
		return nil, fmt.Errorf("-duration must be positive")
	}
	for _, impl := range cfg.Impls {
		if !contains(knownImpls, impl) {
			return nil, fmt.Errorf("-impls: unknown implementation %q (want some of %s)", impl, strings.Join(knownImpls, ","))
		}
	}
	if _, err := workloads(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// gomaxprocs is the GOMAXPROCS the servers run with (they inherit the
// environment).
func gomaxprocs() int { return runtime.GOMAXPROCS(0) }
