package wsroute_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsroute/wsroute"
)

// rawEcho is the floor: coder/websocket alone, echoing every message, with a
// non-cancellable context on the hot path.
func rawEcho(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := context.Background()
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if c.Write(ctx, typ, b) != nil {
			return
		}
	}
}

// BenchmarkEcho compares a routed echo (route selection, event, two-way
// response) with the raw transport's echo, over loopback, client included.
// Compare the two with benchstat or as a ratio of ns/op.
func BenchmarkEcho(b *testing.B) {
	msg := []byte(`{"action":"echo","data":{"room":"room1234","text":"hello, this is a message"},"n":1}`)
	router := func(b *testing.B) http.Handler {
		r := newRouter(b, nil)
		r.HandleFunc("echo", echo)
		return r
	}
	for _, bc := range []struct {
		name    string
		handler func(*testing.B) http.Handler
	}{
		{"transport=coder", func(*testing.B) http.Handler { return http.HandlerFunc(rawEcho) }},
		{"transport=wsroute", router},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := bc.handler(b)
			srv := httptest.NewServer(h)
			defer srv.Close()
			if r, ok := h.(*wsroute.Router); ok {
				defer r.Shutdown(context.Background())
			}
			b.SetParallelism(4) // 8 connections on 2 cores
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				c, _, err := websocket.Dial(ctx, wsURL(srv), nil)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.CloseNow()
				for pb.Next() {
					if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
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
		})
	}
}
