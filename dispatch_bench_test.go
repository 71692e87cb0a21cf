package wsroute

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkDispatch measures one message from the frame's bytes to the
// handler's return, without a network: the copy of the frame into the event's
// body, JSON validation, route selection, IDs, and the event itself.
func BenchmarkDispatch(b *testing.B) {
	frame := []byte(`{"action":"sendmessage","data":{"room":"room1234","text":"hello, this is a message"},"n":1}`)
	for _, bc := range []struct {
		name string
		expr string
	}{
		{"unwrapped", "$request.body.action"},
		{"multi", "${request.body.action}/${request.body.data.room}"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := New(&Options{RouteSelectionExpression: bc.expr})
			if err != nil {
				b.Fatal(err)
			}
			var got *Request
			h := HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
				got = req
				return nil, nil
			})
			r.Handle("sendmessage", h)
			r.Handle("sendmessage/room1234", h)
			c := r.newConn(httptest.NewRequest("GET", "/", nil), time.Now())
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				c.dispatch(frame, false, time.Now())
			}
			if got == nil || got.Body != string(frame) {
				b.Fatal("the handler did not see the frame")
			}
		})
	}
}
