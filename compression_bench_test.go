package wsroute_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsroute/wsroute"
)

var compressionModes = []struct {
	name string
	mode wsroute.CompressionMode
}{
	{"mode=disabled", wsroute.CompressionDisabled},
	{"mode=no-context-takeover", wsroute.CompressionNoContextTakeover},
	{"mode=context-takeover", wsroute.CompressionContextTakeover},
}

func historyRouter(b *testing.B, mode wsroute.CompressionMode) *wsroute.Router {
	r := newRouter(b, &wsroute.Options{Compression: mode, Logger: discardLogger})
	r.HandleFunc("history", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: history}, nil
	})
	return r
}

// BenchmarkCompressionReply measures a round trip that asks for a 4 KB JSON
// reply (the history message of compression_test.go), over loopback, client
// included, with each compression mode; wireB/op is what the server sent, and
// cpu-µs/op the CPU time the process (server and client) spent per round
// trip, which a loaded machine distorts less than ns/op.
func BenchmarkCompressionReply(b *testing.B) {
	for _, m := range compressionModes {
		b.Run(m.name, func(b *testing.B) {
			r := historyRouter(b, m.mode)
			srv := httptest.NewServer(r)
			defer srv.Close()
			defer r.Shutdown(context.Background())
			var wire atomic.Int64
			tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countingConn{Conn: nc, read: &wire}, nil
			}}
			defer tr.CloseIdleConnections()
			b.SetParallelism(4) // 8 connections on 2 cores
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				c, _, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{
					HTTPClient:      &http.Client{Transport: tr},
					CompressionMode: websocket.CompressionContextTakeover, // the server chooses
				})
				if err != nil {
					b.Error(err)
					return
				}
				defer c.CloseNow()
				for pb.Next() {
					if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"history"}`)); err != nil {
						b.Error(err)
						return
					}
					if _, _, err := c.Read(ctx); err != nil {
						b.Error(err)
						return
					}
				}
				c.Close(websocket.StatusNormalClosure, "")
			})
			cpu := processCPU() - cpu0 // client and server: one process
			b.ReportMetric(float64(wire.Load())/float64(b.N), "wireB/op")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// deflateHandshake opens a connection with nothing but a socket, offering
// permessage-deflate, and sends one uncompressed request for the history
// message, whose reply the server compresses. The reply is left unread in the
// socket buffer: only the server's memory is measured.
func deflateHandshake(addr string) (net.Conn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"+
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n", addr)
	br := bufio.NewReader(nc)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		nc.Close()
		return nil, fmt.Errorf("handshake: %q %v", status, err)
	}
	for { // the rest of the response header
		line, err := br.ReadString('\n')
		if err != nil {
			nc.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	msg := `{"action":"history"}`
	frame := append([]byte{0x81, 0x80 | byte(len(msg)), 0, 0, 0, 0}, msg...) // FIN text, masked with a zero key
	if _, err := nc.Write(frame); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

// BenchmarkCompressionIdleConnection reports the server's memory (heap and
// stacks) per open connection that has received one 4 KB reply, with each
// compression mode. Run with -benchtime=1x; it opens 200 connections per mode.
func BenchmarkCompressionIdleConnection(b *testing.B) {
	const n = 200
	for _, m := range compressionModes {
		b.Run(m.name, func(b *testing.B) {
			for b.Loop() {
				r := historyRouter(b, m.mode)
				srv := httptest.NewServer(r)
				addr := srv.Listener.Addr().String()
				before := inUse()
				conns := make([]net.Conn, 0, n)
				for range n {
					nc, err := deflateHandshake(addr)
					if err != nil {
						b.Fatal(err)
					}
					conns = append(conns, nc)
				}
				time.Sleep(300 * time.Millisecond) // let the replies go out
				after := inUse()
				b.ReportMetric(float64(after-before)/n, "B/conn")
				for _, nc := range conns {
					nc.Close()
				}
				r.Shutdown(context.Background())
				srv.Close()
			}
		})
	}
}

var discardLogger = slog.New(slog.DiscardHandler)
