package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// The stage over TLS with a backend: a client that trusts the printed CA
// dials wss://…/dev, and its messages reach the backend as Lambda proxy
// events.
func TestStageOverTLSWithABackend(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Body           string `json:"body"`
			RequestContext struct {
				RouteKey string `json:"routeKey"`
				Stage    string `json:"stage"`
			} `json:"requestContext"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		if ev.RequestContext.RouteKey != "$default" {
			_, _ = io.WriteString(w, `{"statusCode":200}`)
			return
		}
		reply, _ := json.Marshal(map[string]string{"body": "backend saw " + ev.Body + " on " + ev.RequestContext.Stage})
		_, _ = w.Write(reply)
	}))
	defer backend.Close()

	var out bytes.Buffer
	dir := t.TempDir()
	st, err := newStage(config{addr: "127.0.0.1:0", stage: "dev", backend: backend.URL, tls: true, certDir: dir, quotas: true}, &out)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(st.handler)
	srv.TLS = st.tlsConfig
	srv.StartTLS()
	defer srv.Close()
	defer st.router.Shutdown(context.Background())

	printed := out.String()
	for _, want := range []string{"export AWS_CA_BUNDLE=" + dir + "/ca.pem", "export NODE_EXTRA_CA_CERTS=" + dir + "/ca.pem",
		"export SSL_CERT_FILE=" + dir + "/ca.pem", "wss://127.0.0.1:0/dev", "https://127.0.0.1:0/dev"} {
		assert.Contains(t, printed, want)
	}

	clientTLS, err := st.files.ClientConfig()
	require.NoError(t, err)
	transport := &http.Transport{TLSClientConfig: clientTLS}
	defer transport.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/dev"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: transport}})
	require.NoError(t, err)
	defer c.CloseNow()
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte("hello")))
	_, got, err := c.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, "backend saw hello on dev", string(got))
}
