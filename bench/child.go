package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// childEnv marks a server process: the load generator starts its own
// executable (the bench program, or the test binary) with it set and with
// -serve=<implementation>.
const childEnv = "WSROUTE_BENCH_SERVER"

// liveServers counts server processes started and not yet waited for.
var liveServers atomic.Int64

// server is a running server process.
type server struct {
	impl  string
	addr  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	http  *http.Client
	done  chan struct{} // closed when the process has exited
}

// startServer starts a server process for impl and waits until it listens.
// profile, when not empty, is the file its CPU profile goes to.
func startServer(impl, profile string) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-serve=" + impl}
	if profile != "" {
		args = append(args, "-cpuprofile="+profile)
	}
	cmd := exec.Command(exe, args...)
	// A race-enabled binary (the tests under -race) waits 1 s at exit
	// unless told not to.
	cmd.Env = append(os.Environ(), childEnv+"=1", "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Stderr = os.Stderr
	dieWithParent(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	liveServers.Add(1)
	s := &server{
		impl: impl, cmd: cmd, stdin: stdin, done: make(chan struct{}),
		http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
	go func() {
		cmd.Wait()
		liveServers.Add(-1)
		close(s.done)
	}()
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		l, _ := r.ReadString('\n')
		line <- l
		io.Copy(io.Discard, r)
	}()
	select {
	case l := <-line:
		addr, ok := strings.CutPrefix(strings.TrimSpace(l), "listening ")
		if !ok {
			s.stop()
			return nil, fmt.Errorf("server %s: unexpected first line %q", impl, l)
		}
		s.addr = addr
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, fmt.Errorf("server %s: not listening after 30 s", impl)
	}
	return s, nil
}

// stop ends the server process: it closes its standard input and kills it
// when it has not exited 10 s later. It waits for the process. A process
// that exits with a status other than 0 (a panic, or a data race under
// -race) is recorded for serverFailure.
func (s *server) stop() {
	s.http.CloseIdleConnections()
	s.stdin.Close()
	select {
	case <-s.done:
		if code := s.cmd.ProcessState.ExitCode(); code != 0 {
			failures.Lock()
			failures.errs = append(failures.errs, fmt.Errorf("server process %s exited with status %d (its output is above)", s.impl, code))
			failures.Unlock()
		}
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// failures are the server processes that exited with a status other than 0.
var failures struct {
	sync.Mutex
	errs []error
}

// serverFailure returns, and forgets, the failures recorded so far.
func serverFailure() error {
	failures.Lock()
	defer failures.Unlock()
	err := errors.Join(failures.errs...)
	failures.errs = nil
	return err
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

// stats asks the server for its serverStats, after a GC when gc is set.
func (s *server) stats(gc bool) (serverStats, error) {
	var st serverStats
	q := ""
	if gc {
		q = "?gc=1"
	}
	err := s.getJSON("/stats"+q, &st)
	return st, err
}

func (s *server) getJSON(path string, v any) error {
	resp, err := s.http.Get(s.url(path))
	if err != nil {
		return err
	}
	return decodeResponse(resp, v)
}

func (s *server) postJSON(path string, body []byte, v any) error {
	resp, err := s.http.Post(s.url(path), "application/json", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	return decodeResponse(resp, v)
}

func decodeResponse(resp *http.Response, v any) error {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %s %s", resp.Request.URL.Path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitConns polls the server until it counts n open connections, for up to
// timeout.
func (s *server) waitConns(n int, timeout time.Duration) (serverStats, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.stats(false)
		if err != nil {
			return st, err
		}
		if st.Conns == n {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("server %s counts %d connections, want %d", s.impl, st.Conns, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
