package chatapp

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/internal/leakcheck"
	"github.com/wsroute/wsroute/wsroutetest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// quiet is how long a test waits to be sure that no frame comes.
const quiet = 150 * time.Millisecond

// start serves a new chat app on a test server.
func start(t *testing.T) (*App, *wsroutetest.Server) {
	t.Helper()
	app, err := New(nil)
	require.NoError(t, err)
	srv := wsroutetest.NewServer(t, app.Router(), &wsroutetest.ServerOptions{
		Handler: app.Handler(),
		Path:    EndpointPath,
	})
	return app, srv
}

// register registers user on c and consumes the answer and the presence list
// that follows it.
func register(ctx context.Context, t *testing.T, c *wsroutetest.Client, user string, online ...string) {
	t.Helper()
	c.SendAction(ctx, "registerUser", map[string]any{"userId": user})
	c.ExpectText(ctx, `{"type":"registrationSuccess","userId":"`+user+`"}`)
	c.ExpectJSON(ctx, Presence{Type: TypePresence, Users: online})
}

func TestSampleWireFormat(t *testing.T) {
	ctx := context.Background()
	_, srv := start(t)
	alice := srv.Dial(t, nil)
	bob := srv.Dial(t, nil)

	// Byte for byte, as API Gateway's chat sample.
	alice.SendText(ctx, `{"action":"registerUser","userId":"alice"}`)
	alice.ExpectText(ctx, `{"type":"registrationSuccess","userId":"alice"}`)
	alice.ExpectText(ctx, `{"type":"presence","users":["alice"]}`)
	bob.SendText(ctx, `{"action":"registerUser","userId":"bob"}`)
	bob.ExpectText(ctx, `{"type":"registrationSuccess","userId":"bob"}`)
	bob.ExpectText(ctx, `{"type":"presence","users":["alice","bob"]}`)
	alice.ExpectText(ctx, `{"type":"presence","users":["alice","bob"]}`)

	alice.SendText(ctx, `{"action":"sendPrivateMessage","targetUserId":"bob","message":"hi"}`)
	bob.ExpectText(ctx, `{"type":"privateMessage","fromUserId":"alice","message":"hi"}`)
	alice.ExpectNoFrame(ctx, quiet) // the sample sends the sender nothing

	// Unicode and JSON escapes survive the round trip.
	bob.SendAction(ctx, "sendPrivateMessage", map[string]any{"targetUserId": "alice", "message": "héllo \"ü\" <b>\n🙂"})
	alice.ExpectJSON(ctx, PrivateMessage{Type: TypePrivateMessage, FromUserID: "bob", Message: "héllo \"ü\" <b>\n🙂"})
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	_, srv := start(t)
	alice := srv.Dial(t, nil)
	anon := srv.Dial(t, nil)
	register(ctx, t, alice, "alice", "alice")

	tests := []struct {
		name string
		c    *wsroutetest.Client
		send string
		want Error
	}{
		{"unknown target user", alice, `{"action":"sendPrivateMessage","targetUserId":"carol","message":"hi"}`,
			Error{Code: CodeUnknownUser, Action: ActionSendPrivateMessage, TargetUserID: "carol", Message: `No user "carol" is online.`}},
		{"private message before registering", anon, `{"action":"sendPrivateMessage","targetUserId":"alice","message":"hi"}`,
			Error{Code: CodeNotRegistered, Action: ActionSendPrivateMessage, TargetUserID: "alice", Message: "Register a user ID first."}},
		{"join before registering", anon, `{"action":"join","room":"lobby"}`,
			Error{Code: CodeNotRegistered, Action: ActionJoin, Room: "lobby", Message: "Register a user ID first."}},
		{"send to a room before registering", anon, `{"action":"sendMessage","room":"lobby","message":"hi"}`,
			Error{Code: CodeNotRegistered, Action: ActionSendMessage, Room: "lobby", Message: "Register a user ID first."}},
		{"user ID taken", anon, `{"action":"registerUser","userId":"alice"}`,
			Error{Code: CodeUserIDTaken, Action: ActionRegisterUser, Message: `The user ID "alice" is taken: choose another one.`}},
		{"missing user ID", anon, `{"action":"registerUser"}`,
			Error{Code: CodeInvalidRequest, Action: ActionRegisterUser, Message: "userId must be 1 to 32 letters, digits, '_', '.' or '-'."}},
		{"invalid user ID", anon, `{"action":"registerUser","userId":"a b"}`,
			Error{Code: CodeInvalidRequest, Action: ActionRegisterUser, Message: "userId must be 1 to 32 letters, digits, '_', '.' or '-'."}},
		{"user ID not a string", anon, `{"action":"registerUser","userId":42}`,
			Error{Code: CodeInvalidRequest, Action: ActionRegisterUser, Message: "userId must be 1 to 32 letters, digits, '_', '.' or '-'."}},
		{"user ID too long", anon, `{"action":"registerUser","userId":"` + strings.Repeat("a", 33) + `"}`,
			Error{Code: CodeInvalidRequest, Action: ActionRegisterUser, Message: "userId must be 1 to 32 letters, digits, '_', '.' or '-'."}},
		{"empty private message", alice, `{"action":"sendPrivateMessage","targetUserId":"alice","message":""}`,
			Error{Code: CodeInvalidRequest, Action: ActionSendPrivateMessage, TargetUserID: "alice", Message: "message must be 1 to 2000 characters."}},
		{"private message too long", alice, `{"action":"sendPrivateMessage","targetUserId":"alice","message":"` + strings.Repeat("ü", 2001) + `"}`,
			Error{Code: CodeInvalidRequest, Action: ActionSendPrivateMessage, TargetUserID: "alice", Message: "message must be 1 to 2000 characters."}},
		{"room message to a room not joined", alice, `{"action":"sendMessage","room":"lobby","message":"hi"}`,
			Error{Code: CodeNotInRoom, Action: ActionSendMessage, Room: "lobby", Message: `Join the room "lobby" before sending to it.`}},
		{"leaving a room not joined", alice, `{"action":"leave","room":"lobby"}`,
			Error{Code: CodeNotInRoom, Action: ActionLeave, Room: "lobby", Message: `You are not in the room "lobby".`}},
		{"invalid room name", alice, `{"action":"join","room":"#lobby"}`,
			Error{Code: CodeInvalidRequest, Action: ActionJoin, Message: "room must be 1 to 32 letters, digits, '_', '.' or '-'."}},
		{"unknown action", alice, `{"action":"dance"}`,
			Error{Code: CodeUnknownAction, Action: "dance", Message: `Unknown action "dance": use one of registerUser, sendPrivateMessage, join, leave, sendMessage.`}},
		{"no action", alice, `{"message":"hi"}`,
			Error{Code: CodeInvalidRequest, Message: `The "action" field is missing.`}},
		{"not JSON", alice, `hello`,
			Error{Code: CodeInvalidRequest, Message: `Frames must be JSON objects with an "action" field.`}},
		{"JSON but not an object", alice, `[1,2]`,
			Error{Code: CodeInvalidRequest, Message: `Frames must be JSON objects with an "action" field.`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.SendText(ctx, tt.send)
			tt.want.Type = TypeError
			tt.c.ExpectJSON(ctx, tt.want)
		})
	}
	// Errors go to the caller only.
	alice.ExpectNoFrame(ctx, quiet)
	anon.ExpectNoFrame(ctx, quiet)
}

func TestRooms(t *testing.T) {
	ctx := context.Background()
	_, srv := start(t)
	alice, bob, carol := srv.Dial(t, nil), srv.Dial(t, nil), srv.Dial(t, nil)
	register(ctx, t, alice, "alice", "alice")
	register(ctx, t, bob, "bob", "alice", "bob")
	alice.ExpectJSON(ctx, Presence{Type: TypePresence, Users: []string{"alice", "bob"}})
	register(ctx, t, carol, "carol", "alice", "bob", "carol")
	alice.ExpectJSON(ctx, Presence{Type: TypePresence, Users: []string{"alice", "bob", "carol"}})
	bob.ExpectJSON(ctx, Presence{Type: TypePresence, Users: []string{"alice", "bob", "carol"}})

	alice.SendAction(ctx, "join", map[string]any{"room": "lobby"})
	alice.ExpectText(ctx, `{"type":"joinSuccess","room":"lobby","members":["alice"]}`)
	bob.SendAction(ctx, "join", map[string]any{"room": "lobby"})
	bob.ExpectText(ctx, `{"type":"joinSuccess","room":"lobby","members":["alice","bob"]}`)
	alice.ExpectText(ctx, `{"type":"userJoined","room":"lobby","userId":"bob"}`)

	// Joining again answers again and tells no one.
	bob.SendAction(ctx, "join", map[string]any{"room": "lobby"})
	bob.ExpectJSON(ctx, JoinSuccess{Type: TypeJoinSuccess, Room: "lobby", Members: []string{"alice", "bob"}})
	alice.ExpectNoFrame(ctx, quiet)

	// A room message reaches every member, the sender included, and no one else.
	bob.SendAction(ctx, "sendMessage", map[string]any{"room": "lobby", "message": "hello lobby"})
	want := `{"type":"roomMessage","room":"lobby","fromUserId":"bob","message":"hello lobby"}`
	bob.ExpectText(ctx, want)
	alice.ExpectText(ctx, want)
	carol.ExpectNoFrame(ctx, quiet)

	// Messages from several members arrive in one order for everyone.
	for i := range 5 {
		alice.SendAction(ctx, "sendMessage", map[string]any{"room": "lobby", "message": "a" + string(rune('0'+i))})
		bob.SendAction(ctx, "sendMessage", map[string]any{"room": "lobby", "message": "b" + string(rune('0'+i))})
	}
	var seenA, seenB []string
	for range 10 {
		var m RoomMessage
		alice.ReadJSON(ctx, &m)
		seenA = append(seenA, m.Message)
		bob.ReadJSON(ctx, &m)
		seenB = append(seenB, m.Message)
	}
	assert.Equal(t, seenA, seenB, "members saw room messages in different orders")

	// Rooms are separate.
	carol.SendAction(ctx, "join", map[string]any{"room": "kitchen"})
	carol.ExpectJSON(ctx, JoinSuccess{Type: TypeJoinSuccess, Room: "kitchen", Members: []string{"carol"}})
	carol.SendAction(ctx, "sendMessage", map[string]any{"room": "kitchen", "message": "psst"})
	carol.ExpectJSON(ctx, RoomMessage{Type: TypeRoomMessage, Room: "kitchen", FromUserID: "carol", Message: "psst"})
	alice.ExpectNoFrame(ctx, quiet)
	bob.ExpectNoFrame(ctx, quiet)

	// Leaving.
	bob.SendAction(ctx, "leave", map[string]any{"room": "lobby"})
	bob.ExpectText(ctx, `{"type":"leaveSuccess","room":"lobby"}`)
	alice.ExpectText(ctx, `{"type":"userLeft","room":"lobby","userId":"bob"}`)
	alice.SendAction(ctx, "sendMessage", map[string]any{"room": "lobby", "message": "alone"})
	alice.ExpectJSON(ctx, RoomMessage{Type: TypeRoomMessage, Room: "lobby", FromUserID: "alice", Message: "alone"})
	bob.ExpectNoFrame(ctx, quiet)
}

func TestDisconnectCleansUp(t *testing.T) {
	ctx := context.Background()
	app, srv := start(t)
	alice, bob := srv.Dial(t, nil), srv.Dial(t, nil)
	register(ctx, t, alice, "alice", "alice")
	register(ctx, t, bob, "bob", "alice", "bob")
	alice.ExpectJSON(ctx, Presence{Type: TypePresence, Users: []string{"alice", "bob"}})
	alice.SendAction(ctx, "join", map[string]any{"room": "lobby"})
	alice.ExpectJSON(ctx, JoinSuccess{Type: TypeJoinSuccess, Room: "lobby", Members: []string{"alice"}})
	bob.SendAction(ctx, "join", map[string]any{"room": "lobby"})
	bob.ExpectJSON(ctx, JoinSuccess{Type: TypeJoinSuccess, Room: "lobby", Members: []string{"alice", "bob"}})
	alice.ExpectJSON(ctx, RoomEvent{Type: TypeUserJoined, Room: "lobby", UserID: "bob"})

	bob.Close(websocket.StatusNormalClosure, "bye")
	alice.ExpectText(ctx, `{"type":"userLeft","room":"lobby","userId":"bob"}`)
	alice.ExpectText(ctx, `{"type":"presence","users":["alice"]}`)
	_, ok := app.UserConnection("bob")
	assert.False(t, ok, "bob is still registered")

	// bob's user ID is free again, and private messages to him fail.
	alice.SendAction(ctx, "sendPrivateMessage", map[string]any{"targetUserId": "bob", "message": "still there?"})
	alice.ExpectJSON(ctx, Error{Type: TypeError, Code: CodeUnknownUser, Action: ActionSendPrivateMessage,
		TargetUserID: "bob", Message: `No user "bob" is online.`})
	bob2 := srv.Dial(t, nil)
	register(ctx, t, bob2, "bob", "alice", "bob")
	alice.ExpectJSON(ctx, Presence{Type: TypePresence, Users: []string{"alice", "bob"}})

	// An abrupt drop cleans up too.
	bob2.CloseNow()
	alice.ExpectJSON(ctx, Presence{Type: TypePresence, Users: []string{"alice"}})
}

// A browser that reconnects registers its user ID again while the server may
// still hold its old connection: the old one is closing, so the new one takes
// the ID over.
func TestReconnectTakesOverUserID(t *testing.T) {
	ctx := context.Background()
	app, srv := start(t)
	alice := srv.Dial(t, nil)
	register(ctx, t, alice, "alice", "alice")
	old, ok := app.UserConnection("alice")
	require.True(t, ok)

	// The server drops alice; she reconnects.
	require.NoError(t, app.Router().Connections().DeleteConnection(ctx, old))
	alice.ExpectClose(ctx, websocket.StatusNormalClosure)
	alice2 := srv.Dial(t, nil)
	register(ctx, t, alice2, "alice", "alice")
	now, ok := app.UserConnection("alice")
	require.True(t, ok)
	assert.NotEqual(t, old, now)

	// A live connection keeps its ID.
	mallory := srv.Dial(t, nil)
	mallory.SendAction(ctx, "registerUser", map[string]any{"userId": "alice"})
	mallory.ExpectJSON(ctx, Error{Type: TypeError, Code: CodeUserIDTaken, Action: ActionRegisterUser,
		Message: `The user ID "alice" is taken: choose another one.`})
}

func TestPushThroughConnectionManager(t *testing.T) {
	ctx := context.Background()
	app, srv := start(t)
	alice := srv.Dial(t, nil)
	register(ctx, t, alice, "alice", "alice")
	id, ok := app.UserConnection("alice")
	require.True(t, ok)
	require.NoError(t, app.Router().Connections().PostToConnection(ctx, id, []byte(`{"type":"notice","message":"maintenance at noon"}`)))
	alice.ExpectText(ctx, `{"type":"notice","message":"maintenance at noon"}`)
}

func TestPage(t *testing.T) {
	_, srv := start(t)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := srv.HTTP.Client().Get(srv.HTTP.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}

	resp, body := get("/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")
	assert.Contains(t, body, `<script src="/static/app.js" defer></script>`)

	resp, body = get("/static/app.js")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "javascript")
	assert.Contains(t, body, `action: "registerUser"`)

	resp, _ = get("/static/style.css")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, _ = get("/nope")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	// A plain GET to the WebSocket endpoint, as API Gateway answers it.
	resp, _ = get(EndpointPath)
	assert.Equal(t, http.StatusUpgradeRequired, resp.StatusCode)

	// Without a management handler nothing is served under the endpoint.
	resp, _ = get(EndpointPath + "/@connections/abc")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// Cross-origin pages may not connect: the router's same-origin check.
func TestOtherOriginRefused(t *testing.T) {
	_, srv := start(t)
	resp := srv.DialRefused(t, &wsroutetest.DialOptions{Header: http.Header{"Origin": {"http://evil.example"}}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	srv.Dial(t, &wsroutetest.DialOptions{Header: http.Header{"Origin": {srv.HTTP.URL}}})
}

func TestNewRefusesOtherExpression(t *testing.T) {
	_, err := New(&Options{Router: &wsroute.Options{RouteSelectionExpression: "$request.body.type"}})
	assert.Error(t, err)
}
