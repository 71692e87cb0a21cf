package wsroute_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{15}=$`)

func TestSmoke(t *testing.T) {
	r := newRouter(t, nil)
	disc := newRecorder()
	r.HandleFunc("echo", echo)
	r.Handle(wsroute.RouteDisconnect, disc)
	srv := serve(t, r)
	c := dial(t, srv, nil)

	send(t, c, `{"action":"echo","n":1}`)
	assert.Equal(t, `{"action":"echo","n":1}`, read(t, c))

	send(t, c, `{"action":"nope"}`)
	frame := read(t, c)
	m := regexp.MustCompile(`^\{"message": "Forbidden", "connectionId":"([^"]+)", "requestId":"([^"]+)"\}$`).FindStringSubmatch(frame)
	require.NotNil(t, m, frame)
	assert.Regexp(t, idPattern, m[1])
	assert.Regexp(t, idPattern, m[2])

	require.NoError(t, c.Close(websocket.StatusNormalClosure, "bye"))
	ev := disc.next(t)
	assert.Equal(t, m[1], ev.RequestContext.ConnectionID)
	assert.Equal(t, 1000, ev.RequestContext.DisconnectStatusCode)
	assert.Equal(t, "bye", ev.RequestContext.DisconnectReason)
}

// A client whose Dial has returned is reachable at once: the router registers
// the connection before it writes the handshake response.
func TestReachableAsSoonAsDialReturns(t *testing.T) {
	r := newRouter(t, nil)
	ids := make(chan string, 1)
	r.HandleFunc(wsroute.RouteConnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		ids <- req.RequestContext.ConnectionID
		return nil, nil
	})
	srv := serve(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for i := range 100 {
		c := dial(t, srv, nil)
		id := <-ids
		require.NoError(t, r.Connections().PostToConnection(ctx, id, []byte("welcome")), "dial %d", i)
		assert.Equal(t, "welcome", read(t, c))
		c.CloseNow()
	}
}
