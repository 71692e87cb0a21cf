// Package soak runs a wsroute router under churn on loopback and checks that
// nothing is lost: connections connect, talk, join and leave groups, post to
// each other by ID and by group, and end in every way there is, while the
// server runs on. The command cmd/wsroute-soak and the root package's
// TestSoakShort run it.
package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsroute/wsroute"
)

// Config sizes a run. Zero fields take the defaults of the short run.
type Config struct {
	Conns    int           // connections that come and go (default 2,000)
	Duration time.Duration // how long they keep coming (default 30 s)
	Parallel int           // at most this many of them open at once (default 200)
	Stable   int           // connections open for the whole run (default 50)
	Seed     uint64
	// Log, when set, receives progress lines.
	Log func(format string, args ...any)
	// RouterLogger receives the routers' own logs. Default none: the soak
	// provokes thousands of panics, refusals and timeouts on purpose.
	RouterLogger *slog.Logger
}

// Summary is what a run counted and found wrong.
type Summary struct {
	Config            Config
	Elapsed           time.Duration
	Dialled           int            // handshakes that succeeded
	Accepted          int            // $connect events
	Disconnects       int            // $disconnect events
	Missing, Repeated int            // accepted connections with no, or more than one, $disconnect
	Endings           map[string]int // connections by way of ending
	Direct            map[string]int // PostToConnection results: nil, ErrGone, ErrLimitExceeded
	GroupPosts        int
	GroupDelivered    int
	GroupSkipped      int
	GroupGone         int
	CheckedDirect     int // messages to stable connections checked once and in order
	CheckedGroup      int
	Malformed         map[string]int // malformed inputs answered as DESIGN.md §10 says
	Goroutines        [2]int         // before the server started, after Shutdown
	HeapInUse         [2]uint64      // the same, in bytes
	OpenFileLimit     uint64
	Problems          []string // empty when the run passed
}

// OK reports whether the run found nothing wrong.
func (s *Summary) OK() bool { return len(s.Problems) == 0 }

func (s *Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %d churning + %d stable connections, %d at once, %v (open-file limit %d)\n",
		s.Config.Conns, s.Config.Stable, s.Config.Parallel, s.Elapsed.Round(time.Millisecond), s.OpenFileLimit)
	fmt.Fprintf(&b, "  accepted %d (dialled %d); $disconnect %d: %d missing, %d duplicated\n",
		s.Accepted, s.Dialled, s.Disconnects, s.Missing, s.Repeated)
	fmt.Fprintf(&b, "  endings: %s\n", mapString(s.Endings))
	fmt.Fprintf(&b, "  PostToConnection: %s; checked %d messages to stable connections: once, in order\n",
		mapString(s.Direct), s.CheckedDirect)
	fmt.Fprintf(&b, "  group posts %d: delivered %d, skipped %d, gone %d; checked %d to stable members: once, in order\n",
		s.GroupPosts, s.GroupDelivered, s.GroupSkipped, s.GroupGone, s.CheckedGroup)
	fmt.Fprintf(&b, "  malformed inputs answered: %s\n", mapString(s.Malformed))
	fmt.Fprintf(&b, "  goroutines %d → %d, heap in use %.1f → %.1f MiB after Shutdown\n",
		s.Goroutines[0], s.Goroutines[1], float64(s.HeapInUse[0])/(1<<20), float64(s.HeapInUse[1])/(1<<20))
	if s.OK() {
		b.WriteString("  PASS\n")
	} else {
		fmt.Fprintf(&b, "  FAIL: %d problems\n", len(s.Problems))
		for _, p := range s.Problems[:min(len(s.Problems), 20)] {
			fmt.Fprintf(&b, "    %s\n", p)
		}
	}
	return b.String()
}

func mapString(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

const (
	maxMessage   = 32 << 10
	idleTimeout  = 3 * time.Second  // long enough for a loaded machine to answer a frame
	wait         = 15 * time.Second // bounds every single wait
	churnGroups  = 8
	stableGroup  = "stable"
	deepNesting  = 10001 // DESIGN.md §10: deeper than 10,000 is not JSON
	talkMessages = 6
)

// way is one way a connection ends.
type way struct {
	name   string
	idle   bool   // on the router with the short idle timeout
	plain  bool   // on the router without a $default route
	code   int    // what $disconnect must report
	reason string // "" also for 1006
	input  string // a malformed input sent (and its answer checked) before the end
}

var ways = []way{
	{name: "close frame", code: 4000, reason: "bye"},
	{name: "close frame 1000", code: 1000, reason: "done"},
	{name: "close frame without status", code: 1005, reason: "Client-side close frame status not set"},
	{name: "TCP reset", code: 1006},
	{name: "TCP close without close frame", code: 1006},
	{name: "DeleteConnection", code: 1000, reason: "Connection Closed Normally"},
	{name: "idle timeout", idle: true, code: 1001, reason: "Going away"},
	{name: "oversize frame", code: 1009, reason: "Message too big"},
	{name: "binary frame", code: 1003, reason: "Binary frames are not supported"},
	{name: "invalid UTF-8", code: 1007, reason: "Text frame is not valid UTF-8"},
	{name: "deep JSON, then close frame", code: 1000, reason: "done", input: "deep JSON"},
	{name: "non-JSON, then close frame", code: 1000, reason: "done", input: "non-JSON"},
	{name: "handler panic, then close frame", code: 1000, reason: "done", input: "panic"},
	{name: "unknown route, then close frame", plain: true, code: 1000, reason: "done", input: "unknown route"},
}

// run is the state of one run.
type run struct {
	cfg   Config
	main  *wsroute.Router
	idle  *wsroute.Router
	plain *wsroute.Router // no $default
	base  string          // ws://127.0.0.1:port

	mu          sync.Mutex
	ids         map[string]string // name → connection ID, from $connect
	accepted    map[string]int
	disconnects map[string][]disc
	expect      map[string]way // connection ID → how it ends
	stable      map[string]bool
	live        []string                    // churning connections that may be posted to
	direct      map[string]map[string][]int // to → from → seqs posted with a nil error
	directRes   map[string]int
	group       map[string][]int // sender → seqs posted to stableGroup with nobody skipped
	malformed   map[string]int
	endings     map[string]int
	groupN      [4]int // posts, delivered, skipped, gone
	problems    []string
	dialled     atomic.Int64

	stableClients               []*client
	checkedDirect, checkedGroup int
}

type disc struct {
	code   int
	reason string
}

func (r *run) problem(format string, args ...any) {
	r.mu.Lock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *run) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		r.cfg.Log(format, args...)
	}
}

// Run runs the soak and returns its summary. The error is for a run that
// could not be carried out at all; what went wrong in a run that was carried
// out is in Summary.Problems.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if cfg.Conns == 0 {
		cfg.Conns = 2000
	}
	if cfg.Duration == 0 {
		cfg.Duration = 30 * time.Second
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = 200
	}
	if cfg.Stable == 0 {
		cfg.Stable = 50
	}
	sum := &Summary{Config: cfg, OpenFileLimit: RaiseOpenFileLimit()}
	if need := uint64(2*(cfg.Parallel+cfg.Stable) + 64); sum.OpenFileLimit < need {
		return nil, fmt.Errorf("soak: the open-file limit %d is below the %d this run needs", sum.OpenFileLimit, need)
	}
	sum.Goroutines[0], sum.HeapInUse[0] = baseline()
	start := time.Now()
	if err := soak(ctx, cfg, sum); err != nil {
		return nil, err
	}
	sum.Elapsed = time.Since(start)
	// Everything the run built is garbage now: goroutines and heap must be
	// back where they were.
	deadline := time.Now().Add(wait)
	for {
		sum.Goroutines[1], sum.HeapInUse[1] = baseline()
		if sum.Goroutines[1] <= sum.Goroutines[0] || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sum.Goroutines[1] > sum.Goroutines[0] {
		sum.Problems = append(sum.Problems, fmt.Sprintf("%d goroutines after Shutdown, %d before", sum.Goroutines[1], sum.Goroutines[0]))
	}
	const heapSlack = 4 << 20
	if sum.HeapInUse[1] > sum.HeapInUse[0]+heapSlack {
		sum.Problems = append(sum.Problems, fmt.Sprintf("heap in use %d B after Shutdown, %d B before", sum.HeapInUse[1], sum.HeapInUse[0]))
	}
	return sum, nil
}

func baseline() (int, uint64) {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapInuse
}

// soak runs the server and the clients, and checks what they saw. Nothing it
// builds outlives it.
func soak(ctx context.Context, cfg Config, sum *Summary) error {
	r := &run{
		cfg: cfg, ids: map[string]string{}, accepted: map[string]int{}, disconnects: map[string][]disc{},
		expect: map[string]way{}, stable: map[string]bool{}, direct: map[string]map[string][]int{},
		directRes: map[string]int{}, group: map[string][]int{}, malformed: map[string]int{}, endings: map[string]int{},
	}
	var err error
	// Queues long enough that a client slowed down by a busy machine is not
	// skipped: a full queue drops the replies the clients wait for.
	// TestGroupSlowMemberNeverDelaysOthers covers full queues.
	logger := cfg.RouterLogger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mo := &wsroute.Options{MaxMessageSize: maxMessage, SendQueueSize: 4096, SendQueueBytes: 16 << 20, Logger: logger}
	if r.main, err = wsroute.New(mo); err != nil {
		return err
	}
	if r.idle, err = wsroute.New(&wsroute.Options{IdleTimeout: idleTimeout, Logger: logger}); err != nil {
		return err
	}
	if r.plain, err = wsroute.New(&wsroute.Options{Logger: logger}); err != nil {
		return err
	}
	r.routes()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", r.main)
	mux.Handle("/idle", r.idle)
	mux.Handle("/plain", r.plain)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: wait}
	served := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(served) }()
	r.base = "ws://" + ln.Addr().String()

	r.exercise(ctx)

	sctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	for _, rt := range []*wsroute.Router{r.main, r.idle, r.plain} {
		if err := rt.Shutdown(sctx); err != nil {
			r.problem("Shutdown: %v", err)
		}
	}
	_ = srv.Shutdown(sctx)
	<-served
	r.check(sum)
	return nil
}

func (r *run) routes() {
	for _, rt := range []*wsroute.Router{r.main, r.idle, r.plain} {
		rt.HandleFunc(wsroute.RouteConnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
			id := req.RequestContext.ConnectionID
			r.mu.Lock()
			r.accepted[id]++
			r.ids[req.QueryStringParameters["name"]] = id
			r.mu.Unlock()
			return nil, nil
		})
		rt.HandleFunc(wsroute.RouteDisconnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
			rc := req.RequestContext
			r.mu.Lock()
			r.disconnects[rc.ConnectionID] = append(r.disconnects[rc.ConnectionID], disc{rc.DisconnectStatusCode, rc.DisconnectReason})
			r.mu.Unlock()
			return nil, nil
		})
		rt.HandleFunc("whoami", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
			return &wsroute.Response{StatusCode: 200, Body: "id " + req.RequestContext.ConnectionID}, nil
		})
	}
	m := r.main
	type msg struct {
		To    string `json:"to"`
		Group string `json:"group"`
		Seq   int    `json:"seq"`
	}
	decode := func(req *wsroute.Request) (msg, error) {
		var v msg
		return v, json.Unmarshal([]byte(req.Body), &v)
	}
	m.HandleFunc("send", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		v, err := decode(req)
		if err != nil {
			return nil, err
		}
		from := req.RequestContext.ConnectionID
		err = wsroute.ConnectionsFromContext(ctx).PostToConnection(ctx, v.To, []byte("d "+from+" "+strconv.Itoa(v.Seq)))
		r.recordDirect(from, v.To, v.Seq, err)
		return nil, nil
	})
	m.HandleFunc("gsend", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		v, err := decode(req)
		if err != nil {
			return nil, err
		}
		from := req.RequestContext.ConnectionID
		res, err := wsroute.GroupsFromContext(ctx).PostToGroup(ctx, v.Group, []byte("g "+v.Group+" "+from+" "+strconv.Itoa(v.Seq)))
		if err != nil {
			return nil, err
		}
		r.recordGroup(from, v.Group, v.Seq, res)
		return nil, nil
	})
	for _, action := range []string{"join", "leave"} {
		m.HandleFunc(action, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
			v, err := decode(req)
			if err != nil {
				return nil, err
			}
			g, id := wsroute.GroupsFromContext(ctx), req.RequestContext.ConnectionID
			if action == "join" {
				err = g.Join(ctx, v.Group, id)
			} else {
				err = g.Leave(ctx, v.Group, id)
			}
			if err != nil {
				return nil, err
			}
			return &wsroute.Response{StatusCode: 200, Body: action + " " + v.Group}, nil
		})
	}
	m.HandleFunc("done", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{StatusCode: 200, Body: "done"}, nil
	})
	m.HandleFunc("panic", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		panic("soak: a handler panics")
	})
	m.HandleFunc(wsroute.RouteDefault, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{StatusCode: 200, Body: "default " + strconv.Itoa(len(req.Body))}, nil
	})
}

func (r *run) recordDirect(from, to string, seq int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.directRes["nil"]++
		if r.stable[to] {
			if r.direct[to] == nil {
				r.direct[to] = map[string][]int{}
			}
			r.direct[to][from] = append(r.direct[to][from], seq)
		}
	case errors.Is(err, wsroute.ErrLimitExceeded):
		r.directRes["ErrLimitExceeded"]++
	case errors.Is(err, wsroute.ErrGone) && !r.stable[to]:
		r.directRes["ErrGone"]++
	default:
		r.problems = append(r.problems, fmt.Sprintf("post from %s to %s (stable %v): %v", from, to, r.stable[to], err))
	}
}

func (r *run) recordGroup(from, group string, seq int, res wsroute.PostResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.groupN[0]++
	r.groupN[1] += res.Delivered
	r.groupN[2] += res.Skipped
	r.groupN[3] += res.Gone
	if group == stableGroup {
		if res.Skipped == 0 && res.Gone == 0 {
			r.group[from] = append(r.group[from], seq)
		}
	}
}
