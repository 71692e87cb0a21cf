package wsroute_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// An empty API key (an unset environment variable, say) would let in every
// client that sends no key: New refuses it and names the field.
func TestEmptyAPIKeyRefused(t *testing.T) {
	for _, keys := range [][]string{{""}, {"k-123", ""}} {
		_, err := wsroute.New(&wsroute.Options{APIKeys: keys})
		require.Error(t, err, "APIKeys %q", keys)
		assert.Contains(t, err.Error(), "Options.APIKeys[")
		assert.Contains(t, err.Error(), "is empty")
	}
}

// A key that is a prefix, an extension or a different case of a valid key is
// refused; each valid key of several is accepted.
func TestAPIKeysCompared(t *testing.T) {
	srv := serve(t, newRouter(t, &wsroute.Options{APIKeys: []string{"k-123", "k-456"}}))
	key := func(v string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"X-Api-Key": {v}}}
	}
	for _, bad := range []string{"k-12", "k-1234", "K-123", "k-123x"} {
		status, _ := dialStatus(t, wsURL(srv), key(bad))
		assert.Equal(t, http.StatusForbidden, status, "key %q", bad)
	}
	for _, good := range []string{"k-123", "k-456"} {
		status, _ := dialStatus(t, wsURL(srv), key(good))
		assert.Equal(t, http.StatusSwitchingProtocols, status, "key %q", good)
	}
}

func TestOptionErrorsNameTheField(t *testing.T) {
	for _, tt := range []struct {
		field string
		opts  wsroute.Options
	}{
		{"MaxMessageSize", wsroute.Options{MaxMessageSize: -1}},
		{"MaxPostSize", wsroute.Options{MaxPostSize: -1}},
		{"SendQueueSize", wsroute.Options{SendQueueSize: -1}},
		{"SendQueueBytes", wsroute.Options{SendQueueBytes: -1}},
		{"PongTimeout", wsroute.Options{PongTimeout: -1}},
		{"CloseTimeout", wsroute.Options{CloseTimeout: -1}},
	} {
		t.Run(tt.field, func(t *testing.T) {
			_, err := wsroute.New(&tt.opts)
			require.Error(t, err)
			assert.Equal(t, "wsroute: Options."+tt.field+" is negative", err.Error())
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the router's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// useDefaultLogger points slog.Default at a buffer for the test.
func useDefaultLogger(t *testing.T) *syncBuffer {
	buf := &syncBuffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return buf
}

// Without Options.Logger, a handler's panic and error reach slog.Default, as
// net/http's do the standard logger: a newcomer sees them in the terminal.
func TestHandlerFailuresLoggedByDefault(t *testing.T) {
	buf := useDefaultLogger(t)
	r, err := wsroute.New(nil)
	require.NoError(t, err)
	r.HandleFunc("boom", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		panic("boom at line 42")
	})
	r.HandleFunc("fail", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return nil, errors.New("database unreachable")
	})
	srv := serve(t, r)
	c := dial(t, srv, nil)
	send(t, c, `{"action":"boom"}`)
	assert.Contains(t, read(t, c), "Internal server error")
	send(t, c, `{"action":"fail"}`)
	assert.Contains(t, read(t, c), "Internal server error")

	logged := buf.String()
	assert.Contains(t, logged, "handler panicked")
	assert.Contains(t, logged, "boom at line 42")
	assert.Contains(t, logged, "database unreachable")
}

// The management handler logs to slog.Default too when its Logger is unset.
func TestManagementLogsToDefault(t *testing.T) {
	buf := useDefaultLogger(t)
	r, err := wsroute.New(nil)
	require.NoError(t, err)
	h := wsroute.NewManagementHandler(r.Connections(), &wsroute.ManagementOptions{BearerTokens: []string{"s3cret"}})
	req := httptest.NewRequest(http.MethodGet, "/@connections/AAAAAAAAAAAAAAA=", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.True(t, strings.Contains(buf.String(), "refused"), "log: %q", buf.String())
	assert.NotContains(t, buf.String(), "s3cret")
}
