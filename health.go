package wsroute

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Readier is something a router's readiness depends on, such as the broker
// of a scale-out backplane: Ready returns nil when it is usable, an error
// saying why not otherwise. It must honour ctx and be safe for concurrent
// use. A backplane that implements it can be handed to
// [HealthOptions.Checks] as it is.
type Readier interface {
	Ready(ctx context.Context) error
}

// ReadyFunc adapts a function to a [Readier].
type ReadyFunc func(ctx context.Context) error

// Ready calls f(ctx).
func (f ReadyFunc) Ready(ctx context.Context) error { return f(ctx) }

// HealthOptions configures [Router.HealthHandler].
type HealthOptions struct {
	// Checks are what readiness depends on besides the router itself, by
	// name: a backplane's broker, a database. /ready runs them all, in
	// parallel, on every request. A check named "backplane" replaces the
	// automatic check of an [Options.Backplane] that is a Readier.
	Checks map[string]Readier

	// Timeout bounds each readiness check. Default 2 s.
	Timeout time.Duration

	// Logger receives the errors of failed checks (at Warn), which the
	// response names but does not quote. Default: nothing is logged.
	Logger *slog.Logger
}

// HealthHandler returns an http.Handler for a load balancer's or an
// orchestrator's health checks. It answers GET and HEAD requests whose path
// ends in:
//
//   - /live: 200 {"status":"ok"} as long as the process serves HTTP; the
//     router does not make it fail.
//   - /ready: 200 {"status":"ok"} while the router accepts connections and
//     every check passes (the checks of opts, and [Options.Backplane] when
//     it is a [Readier], named "backplane": the NATS one is, and reports
//     whether its server is reachable); 503
//     {"status":"unavailable","failed":[…]} once
//     [Router.Shutdown] has begun ("router" is then among the failed), or
//     when a check fails or outlasts its Timeout (its name is listed; its
//     error is logged, not sent).
//
// Other paths get 404 and other methods 405. Mount it under any prefix:
//
//	mux.Handle("/healthz/", router.HealthHandler(nil))
//
// The handler is safe for concurrent use; a nil opts means the defaults.
func (r *Router) HealthHandler(opts *HealthOptions) http.Handler {
	h := &healthHandler{r: r, timeout: 2 * time.Second, log: slog.New(slog.DiscardHandler)}
	if opts != nil {
		for name, c := range opts.Checks {
			if c == nil {
				panic("wsroute: HealthHandler: nil check " + name)
			}
			h.names = append(h.names, name)
		}
		sort.Strings(h.names)
		h.checks = opts.Checks
		if opts.Timeout > 0 {
			h.timeout = opts.Timeout
		}
		if opts.Logger != nil {
			h.log = opts.Logger
		}
	}
	return h
}

type healthHandler struct {
	r       *Router
	names   []string // sorted, so that responses are stable
	checks  map[string]Readier
	timeout time.Duration
	log     *slog.Logger
}

type healthStatus struct {
	Status string   `json:"status"`
	Failed []string `json:"failed,omitempty"`
}

func (h *healthHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var failed []string
	switch {
	case strings.HasSuffix(req.URL.Path, "/live"):
	case strings.HasSuffix(req.URL.Path, "/ready"):
		failed = h.ready(req.Context())
	default:
		http.NotFound(w, req)
		return
	}
	st, status := healthStatus{Status: "ok"}, http.StatusOK
	if len(failed) > 0 {
		st, status = healthStatus{Status: "unavailable", Failed: failed}, http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if req.Method == http.MethodGet {
		_ = json.NewEncoder(w).Encode(st)
	}
}

// ready returns the names of what is not ready, sorted.
func (h *healthHandler) ready(ctx context.Context) []string {
	var failed []string
	if !h.r.accepting() {
		failed = append(failed, "router")
	}
	names, checks := h.names, h.checks
	if rd, ok := h.r.opts.Backplane.(Readier); ok && checks["backplane"] == nil {
		names = append([]string{"backplane"}, names...)
		checks = maps.Clone(checks)
		if checks == nil {
			checks = map[string]Readier{}
		}
		checks["backplane"] = rd
	}
	if len(names) == 0 {
		return failed
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	errs := make([]error, len(names))
	done := make(chan int, len(names))
	for i, name := range names {
		go func() {
			errs[i] = checks[name].Ready(ctx)
			done <- i
		}()
	}
	finished := make([]bool, len(names))
	for range names {
		select {
		case i := <-done:
			finished[i] = true
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	for i, name := range names {
		switch {
		case !finished[i]:
			h.log.Warn("wsroute: readiness check timed out", "check", name, "timeout", h.timeout)
			failed = append(failed, name)
		case errs[i] != nil:
			h.log.Warn("wsroute: readiness check failed", "check", name, "err", errs[i])
			failed = append(failed, name)
		}
	}
	return failed
}

// accepting reports whether the router accepts connections: Shutdown has not
// begun.
func (r *Router) accepting() bool {
	r.lifeMu.RLock()
	defer r.lifeMu.RUnlock()
	return !r.closing
}
