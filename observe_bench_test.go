package wsroute

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkDispatchObserver is BenchmarkDispatch's unwrapped case with the
// Observer hook unset and set to an Observer that does nothing: the
// difference is what the hook itself costs. The prometheus and otel modules
// run the same with their Observers.
func BenchmarkDispatchObserver(b *testing.B) {
	for _, bc := range []struct {
		name string
		obs  Observer
	}{
		{"unset", nil},
		{"nop", NopObserver{}},
	} {
		b.Run(bc.name, func(b *testing.B) { benchDispatch(b, bc.obs) })
	}
}

// benchDispatch runs one message through dispatch with obs as the Observer,
// reading the frame, routing it, running the handler and queuing its reply.
func benchDispatch(b *testing.B, obs Observer) {
	frame := []byte(`{"action":"sendmessage","data":{"room":"room1234","text":"hello, this is a message"},"n":1}`)
	r, err := New(&Options{Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	r.HandleFunc("sendmessage", func(context.Context, *Request) (*Response, error) {
		n++
		return nil, nil
	})
	c := r.newConn(httptest.NewRequest("GET", "/", nil), time.Now())
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		c.observeFrame(false, len(frame), 0, nil)
		c.dispatch(frame, false, time.Now())
	}
	if n == 0 {
		b.Fatal("the handler did not run")
	}
}
