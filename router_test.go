package wsroute_test

import (
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
