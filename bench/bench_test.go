package main

import (
	"bytes"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain serves when the load generator has started the test binary as a
// server process; otherwise it runs the tests and fails when a goroutine
// outlives them or a server process is still running.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(serveMain(os.Args[1:]))
	}
	code := m.Run()
	if n := liveServers.Load(); n != 0 && code == 0 {
		os.Stderr.WriteString("bench: server processes outlived the tests\n")
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("bench: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// TestSmoke runs every workload against every implementation at tiny sizes,
// so that the program keeps working: each workload fails when a message is
// lost (the fan-out counts every client, the echo compares every answer,
// the management API counts every push), and every figure must be a sane,
// positive number.
func TestSmoke(t *testing.T) {
	cfg, err := parseFlags([]string{
		"-trials=1", "-conns=4", "-fanout=12", "-rounds=2", "-idle=12",
		"-duration=200ms", "-connect-workers=2", "-mgmt-conns=3", "-mgmt-workers=2", "-dial-workers=4",
	})
	if err != nil {
		t.Fatal(err)
	}
	var out, progress bytes.Buffer
	res, err := run(cfg, &out, &progress)
	t.Log("\n" + progress.String())
	if err != nil {
		t.Fatal(err)
	}
	ws, err := workloads(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 5 {
		t.Fatalf("%d workloads, want echo, fan-out, idle, connect and mgmt", len(ws))
	}
	for _, w := range ws {
		for _, impl := range w.impls {
			rs := res[w.name][impl]
			if len(rs) != 1 {
				t.Errorf("%s %s: %d results, want 1", w.name, impl, len(rs))
				continue
			}
			for _, m := range w.metrics {
				v, ok := rs[0][m.key]
				switch {
				case !ok || math.IsNaN(v) || math.IsInf(v, 0):
					t.Errorf("%s %s: %s = %v", w.name, impl, m.key, v)
				case m.key == "left" || m.key == "limited" || w.name == "idle" && m.key != "goroutines":
					// Differences of two samples: may be 0 or negative at a handful of connections.
				case v <= 0:
					t.Errorf("%s %s: %s = %v, want > 0", w.name, impl, m.key, v)
				}
			}
		}
		if !strings.Contains(out.String(), "### "+w.name+"\n") {
			t.Errorf("the report has no table for %s", w.name)
		}
	}
	idle := res["idle"]
	for _, impl := range cfg.Impls {
		want := 1.0
		if impl == "melody" {
			want = 2 // its writer goroutine
		}
		if g := idle[impl][0]["goroutines"]; math.Abs(g-want) > 0.1 { // one stray goroutine at 12 connections is 0.08
			t.Errorf("idle %s: %v goroutines per connection, want %v", impl, g, want)
		}
	}
	for _, want := range []string{"- Go: ", "- CPU: ", "GOMAXPROCS", "- Open-file limit ", "wsroute ÷ coder (the transport's floor)", "| coder-naive (loop in handler, r.Context()) |", "| melody (Broadcast) |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log("\n" + out.String())
	}
}

// TestServerRefusesWithoutToken checks the check the connect workload relies
// on, for every implementation, and that a server process stops when told.
func TestServerRefusesWithoutToken(t *testing.T) {
	for _, impl := range knownImpls {
		s, err := startServer(impl, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = dialWS(s.addr, "nope", 5*time.Second)
		var se *statusError
		if !errors.As(err, &se) || se.code != 401 {
			t.Errorf("%s: dial without the token: %v, want 401", impl, err)
		}
		c, err := dialWS(s.addr, token, 5*time.Second)
		if err != nil {
			t.Errorf("%s: dial with the token: %v", impl, err)
		} else if err := c.close(5 * time.Second); err != nil {
			t.Errorf("%s: close: %v", impl, err)
		}
		s.stop()
		select {
		case <-s.done:
		default:
			t.Errorf("%s: the server process still runs after stop", impl)
		}
		if err := serverFailure(); err != nil {
			t.Error(err)
		}
	}
}

// TestServerFailureReported: a server process that exits with an error
// status (here: an unknown implementation; under -race, a data race) fails
// the run.
func TestServerFailureReported(t *testing.T) {
	if _, err := startServer("nope", ""); err == nil {
		t.Fatal("a server for an unknown implementation started")
	}
	err := serverFailure()
	if err == nil || !strings.Contains(err.Error(), "exited with status 2") {
		t.Fatalf("serverFailure() = %v, want the exit status 2", err)
	}
	if err := serverFailure(); err != nil {
		t.Errorf("the failure is reported twice: %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	for _, bad := range [][]string{
		{"-workloads=echo,nope"}, {"-impls=wsroute,nope"}, {"-fanout=10,x"}, {"-trials=0"}, {"-duration=0s"}, {"extra"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
	cfg, err := parseFlags([]string{"-impls=gorilla"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Impls, ",") != "wsroute,coder,gorilla" {
		t.Errorf("impls %q: wsroute and coder must always be measured", cfg.Impls)
	}
}
