package chatapp

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/wsroutetest"
)

// The route handlers called directly, without a network: events from
// wsroutetest.Events, pushes recorded by wsroutetest.Recorder.

// handlerApp returns an app whose handlers push to rec, and a router-like
// dispatcher for MESSAGE events by route key.
func handlerApp(t *testing.T) (*App, *wsroutetest.Recorder, func(*wsroute.Request) *wsroute.Response) {
	t.Helper()
	rec := wsroutetest.NewRecorder()
	a := newApp(rec, slog.New(slog.DiscardHandler))
	routes := map[string]wsroute.HandlerFunc{
		ActionRegisterUser:       a.registerUser,
		ActionSendPrivateMessage: a.sendPrivateMessage,
		ActionJoin:               a.join,
		ActionLeave:              a.leave,
		ActionSendMessage:        a.sendMessage,
		wsroute.RouteDisconnect:  a.disconnect,
	}
	call := func(req *wsroute.Request) *wsroute.Response {
		t.Helper()
		h, ok := routes[req.RequestContext.RouteKey]
		if !ok {
			h = a.unknownAction
		}
		resp, err := h(context.Background(), req)
		require.NoError(t, err)
		return resp
	}
	return a, rec, call
}

func TestHandlersDirectly(t *testing.T) {
	_, rec, call := handlerApp(t)
	alice, bob := wsroutetest.NewEvents(), wsroutetest.NewEvents()
	rec.Open(alice.ConnectionID)
	rec.Open(bob.ConnectionID)

	assert.Nil(t, call(alice.Message(`{"action":"registerUser","userId":"alice"}`)))
	assert.Equal(t, []string{
		`{"type":"registrationSuccess","userId":"alice"}`,
		`{"type":"presence","users":["alice"]}`,
	}, rec.TakePosted(alice.ConnectionID))

	assert.Nil(t, call(bob.Message(`{"action":"registerUser","userId":"bob"}`)))
	assert.Equal(t, []string{`{"type":"presence","users":["alice","bob"]}`}, rec.TakePosted(alice.ConnectionID))
	rec.TakePosted(bob.ConnectionID)

	assert.Nil(t, call(alice.Message(`{"action":"sendPrivateMessage","targetUserId":"bob","message":"hi"}`)))
	assert.Equal(t, []string{`{"type":"privateMessage","fromUserId":"alice","message":"hi"}`}, rec.TakePosted(bob.ConnectionID))
	assert.Empty(t, rec.TakePosted(alice.ConnectionID))

	// Errors are two-way responses: the router sends their body back.
	resp := call(alice.Message(`{"action":"sendPrivateMessage","targetUserId":"carol","message":"hi"}`))
	require.NotNil(t, resp)
	assert.JSONEq(t, `{"type":"error","code":"unknownUser","action":"sendPrivateMessage","targetUserId":"carol","message":"No user \"carol\" is online."}`, resp.Body)

	// A target whose connection is gone (its $disconnect not run yet) is
	// unknown too.
	rec.Close(bob.ConnectionID)
	resp = call(alice.Message(`{"action":"sendPrivateMessage","targetUserId":"bob","message":"hi"}`))
	require.NotNil(t, resp)
	assert.Contains(t, resp.Body, `"code":"unknownUser"`)

	// $disconnect forgets bob and tells alice.
	assert.Nil(t, call(bob.Disconnect(1006, "")))
	assert.Equal(t, []string{`{"type":"presence","users":["alice"]}`}, rec.TakePosted(alice.ConnectionID))

	// A second $disconnect (never sent by the router) changes nothing.
	assert.Nil(t, call(bob.Disconnect(1006, "")))
	assert.Empty(t, rec.TakePosted(alice.ConnectionID))
}

func TestRoomsDirectly(t *testing.T) {
	_, rec, call := handlerApp(t)
	users := map[string]*wsroutetest.Events{}
	for _, u := range []string{"alice", "bob"} {
		ev := wsroutetest.NewEvents()
		users[u] = ev
		rec.Open(ev.ConnectionID)
		call(ev.Message(`{"action":"registerUser","userId":"` + u + `"}`))
	}
	alice, bob := users["alice"], users["bob"]
	rec.TakePosted(alice.ConnectionID)
	rec.TakePosted(bob.ConnectionID)

	call(alice.Message(`{"action":"join","room":"lobby"}`))
	call(bob.Message(`{"action":"join","room":"lobby"}`))
	assert.Equal(t, []string{
		`{"type":"joinSuccess","room":"lobby","members":["alice"]}`,
		`{"type":"userJoined","room":"lobby","userId":"bob"}`,
	}, rec.TakePosted(alice.ConnectionID))
	assert.Equal(t, []string{`{"type":"joinSuccess","room":"lobby","members":["alice","bob"]}`}, rec.TakePosted(bob.ConnectionID))

	call(alice.Message(`{"action":"sendMessage","room":"lobby","message":"hello"}`))
	want := []string{`{"type":"roomMessage","room":"lobby","fromUserId":"alice","message":"hello"}`}
	assert.Equal(t, want, rec.TakePosted(alice.ConnectionID))
	assert.Equal(t, want, rec.TakePosted(bob.ConnectionID))

	// Leaving by disconnecting.
	call(alice.Disconnect(1001, "Going away"))
	assert.Equal(t, []string{
		`{"type":"userLeft","room":"lobby","userId":"alice"}`,
		`{"type":"presence","users":["bob"]}`,
	}, rec.TakePosted(bob.ConnectionID))
}

func TestStoreIsConsistent(t *testing.T) {
	s := newStore()
	holder, renamed := s.register("c1", "alice")
	assert.Empty(t, holder)
	assert.False(t, renamed)
	holder, _ = s.register("c2", "alice")
	assert.Equal(t, "c1", holder)

	// Renaming frees the old ID.
	_, renamed = s.register("c1", "alicia")
	assert.True(t, renamed)
	assert.Equal(t, "", s.connOf("alice"))
	assert.Equal(t, "c1", s.connOf("alicia"))

	s.register("c2", "bob")
	members, others, already := s.join("c1", "r")
	assert.Equal(t, []string{"alicia"}, members)
	assert.Empty(t, others)
	assert.False(t, already)
	members, others, _ = s.join("c2", "r")
	assert.Equal(t, []string{"alicia", "bob"}, members)
	assert.Equal(t, []string{"c1"}, others)

	d, ok := s.remove("c1")
	require.True(t, ok)
	assert.Equal(t, "alicia", d.userID)
	assert.Equal(t, map[string][]string{"r": {"c2"}}, d.rooms)
	others, ok = s.leave("c2", "r")
	assert.True(t, ok)
	assert.Empty(t, others)
	assert.Empty(t, s.rooms, "empty rooms are deleted")
	users, _ := s.presence()
	assert.Equal(t, []string{"bob"}, users)
}
