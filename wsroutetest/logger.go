package wsroutetest

import (
	"bytes"
	"log/slog"
	"sync"
)

// Logger returns a logger that writes to t.Logf, at every level down to
// Debug, so a router's logs (handler errors, panics with their stacks,
// closes) appear beside the test that caused them: with -v, or when it
// fails. [NewRouter] gives it to routers that have no Logger of their own;
// give it to [wsroute.ManagementOptions] too.
//
// It is safe to use from any goroutine, also after the test ends: what is
// logged then is dropped (testing panics on a Log after the end).
func Logger(t TB) *slog.Logger {
	w := &tbWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tbWriter passes each record the text handler writes to t.Logf until the
// test's cleanup stops it.
type tbWriter struct {
	mu      sync.Mutex
	t       TB
	stopped bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
