package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// config is what one run measures; the flags of main fill it in.
type config struct {
	Trials         int
	Workloads      []string // echo, fanout, idle, connect, mgmt
	Impls          []string // the servers of every workload but mgmt
	EchoConns      int
	Fanout         []int // connection counts
	FanoutRounds   int
	IdleConns      int
	Duration       time.Duration // of echo, connect and each mgmt variant
	ConnectWorkers int
	ConnectMax     int
	MgmtConns      int
	MgmtWorkers    int
	DialWorkers    int
	CPUProfileDir  string
}

// result is one trial of one implementation: metric key → value.
type result map[string]float64

// metric is one column of a workload's table.
type metric struct {
	key, title string
	prec       int  // decimals shown
	noRatio    bool // a difference near zero, or a count: ratios mean nothing
}

// workload is one table of the report.
type workload struct {
	name, title string
	impls       []string // the first is the reference the others are compared with
	floor       string   // the reference's floor, or ""
	metrics     []metric // the first is the one per-trial pair ratios are shown for
	run         func(cfg *config, impl, profile string) (result, error)
}

// echoFrame is the ~100-byte JSON frame of the echo and connect workloads.
var echoFrame = []byte(`{"action":"echo","data":{"room":"room1234","text":"hello, this is a benchmark message"},"n":123456}`)

const (
	dialTimeout = 10 * time.Second
	ioTimeout   = 30 * time.Second // no single read or wait lasts longer
)

func workloads(cfg *config) ([]workload, error) {
	var out []workload
	for _, name := range cfg.Workloads {
		switch name {
		case "echo":
			out = append(out, workload{
				name:  "echo",
				title: fmt.Sprintf("echo: %d connections, each writing a %d-byte JSON frame routed by $request.body.action and waiting for the answer, %s per trial", cfg.EchoConns, len(echoFrame), cfg.Duration),
				impls: cfg.Impls, floor: "coder",
				metrics: []metric{{"cpu", "server CPU µs/msg", 2, false}, {"rate", "msg/s", 0, false}, {"p50", "p50 µs", 0, false}, {"p99", "p99 µs", 0, false}, {"rss", "server RSS MiB", 1, false}},
				run:     runEcho,
			})
		case "fanout":
			for _, n := range cfg.Fanout {
				out = append(out, workload{
					name:  "fanout-" + strconv.Itoa(n),
					title: fmt.Sprintf("fan-out: one %d-byte frame to %d connections, median of %d rounds per trial (after one warm-up round)", len(fanoutFrame(0)), n, cfg.FanoutRounds),
					impls: cfg.Impls, floor: "coder",
					metrics: []metric{{"last", "ms until the last client has it", 1, false}, {"cpu", "server CPU µs/recipient", 2, false}, {"left", "heap+stacks left behind B/conn", 0, true}},
					run: func(cfg *config, impl, profile string) (result, error) {
						return runFanout(cfg, impl, profile, n)
					},
				})
			}
		case "idle":
			out = append(out, workload{
				name:  "idle",
				title: fmt.Sprintf("idle memory: %d open idle connections, server process after a GC", cfg.IdleConns),
				impls: cfg.Impls, floor: "coder",
				metrics: []metric{{"rss", "RSS KiB/conn", 2, false}, {"heap", "Go heap KiB/conn", 2, false}, {"stack", "stacks KiB/conn", 2, false}, {"goroutines", "goroutines/conn", 2, false}},
				run:     runIdle,
			})
		case "connect":
			out = append(out, workload{
				name:  "connect",
				title: fmt.Sprintf("connect: %d dialers, each connecting (token checked in $connect or the upgrade handler), sending one echo, closing, %s per trial", cfg.ConnectWorkers, cfg.Duration),
				impls: cfg.Impls, floor: "coder",
				metrics: []metric{{"cpu", "server CPU µs/conn", 1, false}, {"rate", "conn/s", 0, false}},
				run:     runConnect,
			})
		case "mgmt":
			out = append(out, workload{
				name:    "mgmt",
				title:   fmt.Sprintf("management API: pushes of a %d-byte frame to %d connections from %d workers, %s per trial; POST /@connections/{id} (bearer token, keep-alive) against in-process PostToConnection", len(echoFrame), cfg.MgmtConns, cfg.MgmtWorkers, cfg.Duration),
				impls:   []string{"wsroute-inproc", "wsroute-http"},
				metrics: []metric{{"rate", "pushes/s", 0, false}, {"cpu", "server CPU µs/push", 2, false}, {"limited", "refused (429, ErrLimitExceeded)", 0, true}},
				run:     runMgmt,
			})
		default:
			return nil, fmt.Errorf("unknown workload %q (want echo, fanout, idle, connect, mgmt)", name)
		}
	}
	return out, nil
}

// dialN opens n connections to addr from workers dialers.
func dialN(addr string, n, workers int) ([]*wsConn, error) {
	conns := make([]*wsConn, n)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range max(1, min(workers, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := dialWS(addr, token, dialTimeout)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("dial %d of %d: %w", i+1, n, err) })
					next.Store(int64(n)) // stop the others
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		closeAll(conns)
		return nil, firstErr
	}
	return conns, nil
}

func closeAll(conns []*wsConn) {
	for _, c := range conns {
		if c != nil {
			c.nc.Close()
		}
	}
}

// cpuDelta is the server CPU between two stats, in µs per unit.
func cpuDelta(a, b serverStats, units int64) float64 {
	if units <= 0 {
		return math.NaN()
	}
	return float64(b.CPUMicros-a.CPUMicros) / float64(units)
}

func runEcho(cfg *config, impl, profile string) (result, error) {
	s, err := startServer(impl, profile)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	conns, err := dialN(s.addr, cfg.EchoConns, cfg.DialWorkers)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	if _, err := s.waitConns(len(conns), ioTimeout); err != nil {
		return nil, err
	}
	roundTrips := func(c *wsConn, deadline time.Time, max int, lat []time.Duration) ([]time.Duration, error) {
		c.nc.SetDeadline(deadline.Add(ioTimeout))
		buf := make([]byte, 0, 256)
		for i := 0; i < max && time.Now().Before(deadline); i++ {
			t0 := time.Now()
			if err := c.writeText(echoFrame); err != nil {
				return lat, err
			}
			b, err := c.read(buf)
			if err != nil {
				return lat, err
			}
			if !bytes.Equal(b, echoFrame) {
				return lat, fmt.Errorf("echo: got %q", b)
			}
			if lat != nil {
				lat = append(lat, time.Since(t0))
			}
		}
		return lat, nil
	}
	each := func(f func(i int, c *wsConn) error) error {
		errs := make([]error, len(conns))
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = f(i, c)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	// Warm up: a few round trips on every connection.
	if err := each(func(_ int, c *wsConn) error {
		_, err := roundTrips(c, time.Now().Add(ioTimeout), 20, nil)
		return err
	}); err != nil {
		return nil, err
	}
	s0, err := s.stats(false)
	if err != nil {
		return nil, err
	}
	lats := make([][]time.Duration, len(conns))
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	err = each(func(i int, c *wsConn) error {
		var err error
		lats[i], err = roundTrips(c, deadline, 10_000_000, make([]time.Duration, 0, 1024))
		return err
	})
	elapsed := time.Since(start)
	if err != nil {
		return nil, err
	}
	s1, err := s.stats(false)
	if err != nil {
		return nil, err
	}
	all := slices.Concat(lats...)
	if len(all) == 0 {
		return nil, errors.New("echo: no round trip completed")
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / 1e3 }
	return result{
		"rate": float64(len(all)) / elapsed.Seconds(),
		"p50":  pct(0.50),
		"p99":  pct(0.99),
		"cpu":  cpuDelta(s0, s1, int64(len(all))),
		"rss":  float64(s1.RSS) / (1 << 20),
	}, nil
}

// fanoutFrame is the frame of fan-out round r.
func fanoutFrame(r int) []byte {
	return fmt.Appendf(nil, `{"action":"news","room":"lobby","round":%04d,"text":"hello, everyone in the room, from the server"}`, r)
}

func runFanout(cfg *config, impl, profile string, n int) (result, error) {
	s, err := startServer(impl, profile)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	conns, err := dialN(s.addr, n, cfg.DialWorkers)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	if _, err := s.waitConns(n, ioTimeout); err != nil {
		return nil, err
	}
	rounds := cfg.FanoutRounds + 1 // round 0 warms up
	frames := make([][]byte, rounds)
	got := make([]atomic.Int64, rounds)
	last := make([]atomic.Int64, rounds) // latest receive time, UnixNano
	done := make([]chan struct{}, rounds)
	for r := range rounds {
		frames[r] = fanoutFrame(r)
		done[r] = make(chan struct{})
	}
	var (
		readers  sync.WaitGroup
		errMu    sync.Mutex
		readErrs []error
	)
	for _, c := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 0, 128)
			c.nc.SetReadDeadline(time.Now().Add(time.Duration(rounds) * 2 * ioTimeout))
			for r := range rounds {
				b, err := c.read(buf)
				now := time.Now().UnixNano()
				if err == nil && !bytes.Equal(b, frames[r]) {
					err = fmt.Errorf("round %d: got %q", r, b)
				}
				if err != nil {
					errMu.Lock()
					readErrs = append(readErrs, err)
					errMu.Unlock()
					return
				}
				for {
					old := last[r].Load()
					if now <= old || last[r].CompareAndSwap(old, now) {
						break
					}
				}
				if got[r].Add(1) == int64(n) {
					close(done[r])
				}
			}
		}()
	}
	defer func() { closeAll(conns); readers.Wait() }()
	var base, s0 serverStats
	times := make([]float64, 0, rounds)
	for r := range rounds {
		switch r {
		case 0:
			base, err = s.stats(true)
		case 1:
			s0, err = s.stats(false)
		}
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		var sent struct{ Sent int }
		if err := s.postJSON("/fanout", frames[r], &sent); err != nil {
			return nil, err
		}
		if sent.Sent != n {
			return nil, fmt.Errorf("round %d: the server sent to %d connections, want %d", r, sent.Sent, n)
		}
		select {
		case <-done[r]:
		case <-time.After(2 * ioTimeout):
			errMu.Lock()
			defer errMu.Unlock()
			return nil, fmt.Errorf("round %d: %d of %d clients received the frame in %s (errors: %v)", r, got[r].Load(), n, 2*ioTimeout, errors.Join(readErrs...))
		}
		if r > 0 {
			times = append(times, float64(last[r].Load()-t0.UnixNano())/1e6)
		}
		time.Sleep(50 * time.Millisecond) // let the writers go idle
	}
	s1, err := s.stats(false)
	if err != nil {
		return nil, err
	}
	time.Sleep(100 * time.Millisecond) // let the writers exit
	s2, err := s.stats(true)
	if err != nil {
		return nil, err
	}
	slices.Sort(times)
	return result{
		"last": times[len(times)/2],
		"cpu":  cpuDelta(s0, s1, int64(n*cfg.FanoutRounds)),
		"left": (float64(s2.HeapInuse+s2.StackInuse) - float64(base.HeapInuse+base.StackInuse)) / float64(n),
	}, nil
}

func runIdle(cfg *config, impl, profile string) (result, error) {
	s, err := startServer(impl, profile)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	base, err := s.stats(true)
	if err != nil {
		return nil, err
	}
	n := cfg.IdleConns
	conns, err := dialN(s.addr, n, cfg.DialWorkers)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	if _, err := s.waitConns(n, ioTimeout); err != nil {
		return nil, err
	}
	time.Sleep(100*time.Millisecond + time.Duration(n)*40*time.Microsecond) // let the handlers return: 500 ms for 10,000
	st, err := s.stats(true)
	if err != nil {
		return nil, err
	}
	per := func(a, b float64) float64 { return (b - a) / float64(n) }
	return result{
		"rss":        per(float64(base.RSS), float64(st.RSS)) / 1024,
		"heap":       per(float64(base.HeapInuse), float64(st.HeapInuse)) / 1024,
		"stack":      per(float64(base.StackInuse), float64(st.StackInuse)) / 1024,
		"goroutines": per(float64(base.Goroutines), float64(st.Goroutines)),
	}, nil
}

func runConnect(cfg *config, impl, profile string) (result, error) {
	s, err := startServer(impl, profile)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	// The check runs: a client without the token is refused.
	c, err := dialWS(s.addr, "wrong", dialTimeout)
	if err == nil {
		c.nc.Close()
		return nil, errors.New("connect: a client without the token was accepted")
	}
	if se := (*statusError)(nil); !errors.As(err, &se) || se.code != http.StatusUnauthorized {
		return nil, fmt.Errorf("connect: a client without the token: %v, want 401", err)
	}
	one := func() error {
		c, err := dialWS(s.addr, token, dialTimeout)
		if err != nil {
			return err
		}
		c.nc.SetDeadline(time.Now().Add(ioTimeout))
		if err := c.writeText(echoFrame); err != nil {
			c.nc.Close()
			return err
		}
		b, err := c.read(nil)
		if err == nil && !bytes.Equal(b, echoFrame) {
			err = fmt.Errorf("echo: got %q", b)
		}
		if err != nil {
			c.nc.Close()
			return err
		}
		return c.close(5 * time.Second)
	}
	if err := one(); err != nil { // warm up
		return nil, err
	}
	if _, err := s.waitConns(0, ioTimeout); err != nil {
		return nil, err
	}
	s0, err := s.stats(false)
	if err != nil {
		return nil, err
	}
	var (
		issued, made atomic.Int64
		wg           sync.WaitGroup
		errs         = make([]error, cfg.ConnectWorkers)
	)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	for w := range cfg.ConnectWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && issued.Add(1) <= int64(cfg.ConnectMax) {
				if err := one(); err != nil {
					errs[w] = err
					return
				}
				made.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	connects := made.Load()
	s1, err := s.waitConns(0, ioTimeout) // every $disconnect has run
	if err != nil {
		return nil, err
	}
	return result{
		"rate": float64(connects) / elapsed.Seconds(),
		"cpu":  cpuDelta(s0, s1, connects),
	}, nil
}

func runMgmt(cfg *config, impl, profile string) (result, error) {
	s, err := startServer("wsroute", profile)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	n := cfg.MgmtConns
	conns, err := dialN(s.addr, n, cfg.DialWorkers)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	if _, err := s.waitConns(n, ioTimeout); err != nil {
		return nil, err
	}
	var ids []string
	if err := s.getJSON("/ids", &ids); err != nil {
		return nil, err
	}
	var (
		received atomic.Int64
		last     atomic.Int64
		readers  sync.WaitGroup
		badMu    sync.Mutex
		bad      error
	)
	for _, c := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 0, 128)
			for {
				b, err := c.read(buf) // ends when closeAll closes the socket
				if err != nil {
					return
				}
				if !bytes.Equal(b, echoFrame) {
					badMu.Lock()
					bad = fmt.Errorf("pushed frame arrived as %q", b)
					badMu.Unlock()
				}
				last.Store(time.Now().UnixNano())
				received.Add(1)
			}
		}()
	}
	defer func() { closeAll(conns); readers.Wait() }()
	s0, err := s.stats(false)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var ok, limited int64
	switch impl {
	case "wsroute-inproc":
		var r struct{ OK, Limited int64 }
		q := fmt.Sprintf("/push?ms=%d&workers=%d&max=%d", cfg.Duration.Milliseconds(), cfg.MgmtWorkers, 10_000_000)
		if err := s.postJSON(q, echoFrame, &r); err != nil {
			return nil, err
		}
		ok, limited = r.OK, r.Limited
	case "wsroute-http":
		ok, limited, err = httpPushes(s, ids, cfg)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown management variant %q", impl)
	}
	wait := time.Now().Add(ioTimeout)
	for received.Load() < ok && time.Now().Before(wait) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := received.Load(); got != ok {
		return nil, fmt.Errorf("%s: %d pushes accepted, %d received", impl, ok, got)
	}
	s1, err := s.stats(false)
	if err != nil {
		return nil, err
	}
	badMu.Lock()
	defer badMu.Unlock()
	if bad != nil {
		return nil, bad
	}
	return result{
		"rate":    float64(ok) / (float64(last.Load()-start.UnixNano()) / 1e9),
		"cpu":     cpuDelta(s0, s1, ok),
		"limited": float64(limited),
	}, nil
}

// httpPushes posts echoFrame through the management API from
// cfg.MgmtWorkers keep-alive clients, round-robin over ids, for
// cfg.Duration.
func httpPushes(s *server, ids []string, cfg *config) (ok, limited int64, err error) {
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.MgmtWorkers, MaxConnsPerHost: cfg.MgmtWorkers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: ioTimeout}
	var (
		nOK, nLimited atomic.Int64
		wg            sync.WaitGroup
		errs          = make([]error, cfg.MgmtWorkers)
	)
	deadline := time.Now().Add(cfg.Duration)
	for w := range cfg.MgmtWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 10_000_000 && time.Now().Before(deadline); i += cfg.MgmtWorkers {
				req, err := http.NewRequest(http.MethodPost, s.url("/mgmt/@connections/"+ids[i%len(ids)]), bytes.NewReader(echoFrame))
				if err != nil {
					errs[w] = err
					return
				}
				req.Header.Set("Authorization", "Bearer "+bearerToken)
				resp, err := client.Do(req)
				if err != nil {
					errs[w] = err
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					nOK.Add(1)
				case http.StatusTooManyRequests:
					nLimited.Add(1)
				default:
					errs[w] = fmt.Errorf("POST @connections: %s", resp.Status)
					return
				}
			}
		}()
	}
	wg.Wait()
	return nOK.Load(), nLimited.Load(), errors.Join(errs...)
}
