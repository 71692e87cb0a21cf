package wsroute_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

func TestCloseConnectionWithCode(t *testing.T) {
	disc := newRecorder()
	r := newRouter(t, nil)
	r.HandleFunc("whoami", whoami)
	r.HandleFunc("kickme", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		closer, ok := wsroute.ConnectionsFromContext(ctx).(wsroute.ConnectionCloser)
		if !ok {
			return nil, errors.New("no ConnectionCloser")
		}
		return nil, closer.CloseConnection(ctx, req.RequestContext.ConnectionID, 4008, "policy: spam")
	})
	r.Handle(wsroute.RouteDisconnect, disc)
	srv := serve(t, r)
	ctx := context.Background()

	// From outside, through the router.
	c := dial(t, srv, nil)
	send(t, c, `{"action":"whoami"}`)
	id := read(t, c)
	require.NoError(t, r.CloseConnection(ctx, id, 4000, "server restarting, come back later"))
	ce := readClose(t, c)
	assert.Equal(t, websocket.StatusCode(4000), ce.Code)
	assert.Equal(t, "server restarting, come back later", ce.Reason)
	ev := disc.next(t)
	assert.Equal(t, 4000, ev.RequestContext.DisconnectStatusCode)
	assert.Equal(t, "server restarting, come back later", ev.RequestContext.DisconnectReason)
	assert.ErrorIs(t, r.CloseConnection(ctx, id, 4000, ""), wsroute.ErrGone)

	// From a handler, through the context's manager.
	c2 := dial(t, srv, nil)
	send(t, c2, `{"action":"kickme"}`)
	ce = readClose(t, c2)
	assert.Equal(t, websocket.StatusCode(4008), ce.Code)
	assert.Equal(t, "policy: spam", ce.Reason)
	ev = disc.next(t)
	assert.Equal(t, 4008, ev.RequestContext.DisconnectStatusCode)
	assert.Equal(t, "policy: spam", ev.RequestContext.DisconnectReason)
}

func TestCloseConnectionValidates(t *testing.T) {
	r := newRouter(t, nil)
	r.HandleFunc("whoami", whoami)
	c := dial(t, serve(t, r), nil)
	send(t, c, `{"action":"whoami"}`)
	id := read(t, c)
	ctx := context.Background()
	for _, tt := range []struct {
		code   int
		reason string
		want   string
	}{
		{999, "", "code 999"},
		{1004, "", "code 1004"},
		{1005, "", "code 1005"},
		{1006, "", "code 1006"},
		{1015, "", "code 1015"},
		{2999, "", "code 2999"},
		{5000, "", "code 5000"},
		{4000, strings.Repeat("x", 124), "124 bytes"},
		{4000, "bad \xff", "UTF-8"},
	} {
		err := r.CloseConnection(ctx, id, tt.code, tt.reason)
		require.ErrorIs(t, err, wsroute.ErrInvalidClose, "code %d", tt.code)
		assert.Contains(t, err.Error(), tt.want)
	}
	// Nothing was closed: the connection still answers.
	send(t, c, `{"action":"whoami"}`)
	assert.Equal(t, id, read(t, c))
	// The limits themselves are fine.
	for _, code := range []int{1000, 1003, 1007, 1014, 3000, 4999} {
		require.NoError(t, checkCloseOnly(code, strings.Repeat("é", 61)+"x"), "code %d", code)
	}
	require.NoError(t, r.CloseConnection(ctx, id, 1001, strings.Repeat("r", wsroute.MaxCloseReasonLen)))
	assert.Equal(t, websocket.StatusGoingAway, readClose(t, c).Code)
}

// checkCloseOnly asks a router for a connection that does not exist: a valid
// code and reason get ErrGone, an invalid one ErrInvalidClose.
func checkCloseOnly(code int, reason string) error {
	r, err := wsroute.New(nil)
	if err != nil {
		return err
	}
	err = r.CloseConnection(context.Background(), "AAAAAAAAAAAAAAA=", code, reason)
	if errors.Is(err, wsroute.ErrGone) {
		return nil
	}
	return err
}
