package wsroute

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var eventIDForm = regexp.MustCompile(`^[A-Za-z0-9_-]{15}=$`)

// TestMessageEvent checks the event a message builds, for bodies on both
// sides of the inline size and for a binary frame, and that the frame's
// bytes can be reused once dispatch returns.
func TestMessageEvent(t *testing.T) {
	r, err := New(&Options{AcceptBinary: true})
	require.NoError(t, err)
	var got []*Request
	r.HandleFunc("echo", func(_ context.Context, req *Request) (*Response, error) {
		got = append(got, req)
		return nil, nil
	})
	r.HandleFunc(RouteDefault, func(_ context.Context, req *Request) (*Response, error) {
		got = append(got, req)
		return nil, nil
	})
	c := r.newConn(httptest.NewRequest("GET", "/", nil), time.Now())

	small := `{"action":"echo","n":1}`
	exact := `{"action":"echo","pad":"` + strings.Repeat("x", inlineBody-len(`{"action":"echo","pad":""}`)) + `"}`
	large := `{"action":"echo","pad":"` + strings.Repeat("y", 4000) + `"}`
	require.Len(t, exact, inlineBody)
	binary := []byte{0xff, 0x00, 0x81}
	for _, m := range []struct {
		frame  []byte
		binary bool
	}{{[]byte(small), false}, {[]byte(exact), false}, {[]byte(large), false}, {binary, true}} {
		frame := append([]byte(nil), m.frame...)
		c.dispatch(frame, m.binary, time.Now())
		for i := range frame {
			frame[i] = '#' // the read buffer, reused
		}
	}
	require.Len(t, got, 4)
	for i, want := range []string{small, exact, large} {
		ev := got[i]
		assert.Equal(t, want, ev.Body)
		assert.False(t, ev.IsBase64Encoded)
		assert.Equal(t, "echo", ev.RequestContext.RouteKey)
	}
	assert.Equal(t, base64.StdEncoding.EncodeToString(binary), got[3].Body)
	assert.True(t, got[3].IsBase64Encoded)
	assert.Equal(t, RouteDefault, got[3].RequestContext.RouteKey)
	seen := map[string]bool{}
	for _, ev := range got {
		rc := ev.RequestContext
		for _, id := range []string{rc.MessageID, rc.RequestID} {
			assert.Regexp(t, eventIDForm, id)
			assert.False(t, seen[id], "ID %s drawn twice", id)
			seen[id] = true
		}
		assert.Equal(t, rc.RequestID, rc.ExtendedRequestID)
		assert.Equal(t, EventMessage, rc.EventType)
	}
}

// TestDispatchAllocations checks the allocations of routing one message to
// a handler: one for a body of up to 128 bytes (the event, its IDs and its
// body together), two past that.
func TestDispatchAllocations(t *testing.T) {
	r, err := New(nil)
	require.NoError(t, err)
	r.HandleFunc("echo", func(context.Context, *Request) (*Response, error) { return nil, nil })
	c := r.newConn(httptest.NewRequest("GET", "/", nil), time.Now())
	small := []byte(`{"action":"echo","data":{"room":"room1234","text":"hello, this is a message"},"n":1}`)
	large := []byte(`{"action":"echo","pad":"` + strings.Repeat("z", 200) + `"}`)
	now := time.Now()
	assert.Equal(t, 1.0, testing.AllocsPerRun(200, func() { c.dispatch(small, false, now) }))
	assert.Equal(t, 2.0, testing.AllocsPerRun(200, func() { c.dispatch(large, false, now) }))
}
