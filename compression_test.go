package wsroute_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// countingConn counts the bytes the client reads off the socket.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// dialCounting dials with the given compression mode and counts the bytes
// the server sends.
func dialCounting(t *testing.T, url string, mode websocket.CompressionMode) (*websocket.Conn, *http.Response, *atomic.Int64) {
	t.Helper()
	read := &atomic.Int64{}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: nc, read: read}, nil
	}}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:      &http.Client{Transport: tr},
		CompressionMode: mode,
	})
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	return c, resp, read
}

// A 4 KB reply of repetitive JSON, as a chat history is.
var history = `{"type":"history","messages":[` + strings.Repeat(`{"from":"alice","room":"lobby","text":"hello everyone, how are you today?"},`, 55) + `{}]}`

func TestCompression(t *testing.T) {
	for _, tt := range []struct {
		name       string
		mode       wsroute.CompressionMode
		negotiated bool
	}{
		{"default", wsroute.CompressionDisabled, false},
		{"no-context-takeover", wsroute.CompressionNoContextTakeover, true},
		{"context-takeover", wsroute.CompressionContextTakeover, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRouter(t, &wsroute.Options{Compression: tt.mode})
			r.HandleFunc("history", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
				return &wsroute.Response{Body: history}, nil
			})
			r.HandleFunc("echo", echo)
			srv := serve(t, r)
			// The client offers compression; the router accepts it only when enabled.
			c, resp, wireRead := dialCounting(t, wsURL(srv), websocket.CompressionContextTakeover)
			ext := resp.Header.Get("Sec-WebSocket-Extensions")
			assert.Equal(t, tt.negotiated, strings.Contains(ext, "permessage-deflate"), "extensions %q", ext)

			before := wireRead.Load()
			send(t, c, `{"action":"history"}`)
			require.Equal(t, history, read(t, c))
			wire := wireRead.Load() - before
			if tt.negotiated {
				assert.Less(t, wire, int64(len(history)/4), "compressed on the wire")
			} else {
				assert.Greater(t, wire, int64(len(history)), "sent as is")
			}
			// Messages from the client are decompressed for the handlers.
			send(t, c, `{"action":"echo","history":`+history+`}`)
			assert.Equal(t, `{"action":"echo","history":`+history+`}`, read(t, c))
		})
	}
}

// MaxMessageSize bounds a message after decompression: a small compressed
// frame that inflates past it closes the connection with 1009.
func TestCompressionReadLimit(t *testing.T) {
	r := newRouter(t, &wsroute.Options{Compression: wsroute.CompressionNoContextTakeover, MaxMessageSize: 64 << 10})
	r.HandleFunc("echo", echo)
	srv := serve(t, r)
	c, _, _ := dialCounting(t, wsURL(srv), websocket.CompressionNoContextTakeover)
	send(t, c, `{"action":"echo","pad":"`+strings.Repeat("a", 200<<10)+`"}`)
	assert.Equal(t, websocket.StatusMessageTooBig, readClose(t, c).Code)
}

func TestCompressionOptionChecked(t *testing.T) {
	_, err := wsroute.New(&wsroute.Options{Compression: 7})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Options.Compression")
	_, err = wsroute.New(&wsroute.Options{CompressionThreshold: -1})
	require.Error(t, err)
	assert.Equal(t, "wsroute: Options.CompressionThreshold is negative", err.Error())
}
