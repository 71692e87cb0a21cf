package wsroute_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawHold is the transport's floor for an idle connection: the read loop on
// its own goroutine, the HTTP handler returned.
func rawHold(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	go func() {
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
}

// rawInHandler keeps the read loop in the HTTP handler, as most servers do.
func rawInHandler(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		if _, _, err := c.Read(context.Background()); err != nil {
			return
		}
	}
}

// handshake opens a WebSocket connection with nothing but a socket, so that
// the client side costs only its file descriptor and no goroutine.
func handshake(addr string) (net.Conn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", addr)
	status, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		nc.Close()
		return nil, fmt.Errorf("handshake: %q %v", status, err)
	}
	return nc, nil
}

func inUse() uint64 {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// BenchmarkIdleConnection reports the memory (heap and stacks, server and the
// minimal client together) of one idle open connection. Run with
// -benchtime=1x; it opens 2,000 connections per server.
func BenchmarkIdleConnection(b *testing.B) {
	const n = 2000
	for _, bc := range []struct {
		name    string
		handler func(*testing.B) http.Handler
	}{
		{"server=coder-handler-loop", func(*testing.B) http.Handler { return http.HandlerFunc(rawInHandler) }},
		{"server=coder-detached-loop", func(*testing.B) http.Handler { return http.HandlerFunc(rawHold) }},
		{"server=wsroute", func(b *testing.B) http.Handler { return newRouter(b, nil) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				h := bc.handler(b)
				srv := httptest.NewServer(h)
				addr := srv.Listener.Addr().String()
				before := inUse()
				conns := make([]net.Conn, 0, n)
				for range n {
					nc, err := handshake(addr)
					if err != nil {
						b.Fatal(err)
					}
					conns = append(conns, nc)
				}
				time.Sleep(200 * time.Millisecond) // let the handlers return
				after := inUse()
				b.ReportMetric(float64(after-before)/n, "B/conn")
				for _, nc := range conns {
					nc.Close()
				}
				if r, ok := h.(interface{ Shutdown(context.Context) error }); ok {
					r.Shutdown(context.Background())
				}
				srv.Close()
			}
		})
	}
}
