package wsroutetest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/wsroutetest"
)

// exampleT stands in for the *testing.T a test would pass: examples have
// none. It runs the cleanups when done is called, as the test would at its
// end.
type exampleT struct{ cleanups []func() }

func (e *exampleT) Helper()                         {}
func (e *exampleT) Cleanup(f func())                { e.cleanups = append(e.cleanups, f) }
func (e *exampleT) Logf(format string, args ...any) {}
func (e *exampleT) Errorf(format string, args ...any) {
	fmt.Printf("error: "+format+"\n", args...)
}
func (e *exampleT) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
func (e *exampleT) done() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

// A route tested through the network: a router on a test server, a client
// that sends an action, and the frame it gets back.
func Example() {
	t := &exampleT{} // in a test: the *testing.T
	defer t.done()
	ctx := context.Background()

	r := wsroutetest.NewRouter(t, nil)
	r.HandleFunc("greet", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		var in struct{ Name string }
		if err := json.Unmarshal([]byte(req.Body), &in); err != nil {
			return nil, err
		}
		return &wsroute.Response{StatusCode: 200, Body: `{"greeting":"hello, ` + in.Name + `"}`}, nil
	})
	srv := wsroutetest.NewServer(t, r, nil) // shut down when the test ends

	c := srv.Dial(t, nil)
	c.SendAction(ctx, "greet", map[string]any{"name": "alice"}) // {"action":"greet","name":"alice"}
	c.ExpectJSON(ctx, `{"greeting":"hello, alice"}`)

	c.SendAction(ctx, "greet", map[string]any{"name": "bob"})
	fmt.Println(c.Next(ctx))

	// No route and no $default: API Gateway's Forbidden frame.
	c.SendAction(ctx, "dance", nil)
	f := c.ExpectForbidden(ctx)
	fmt.Println(f.Message, len(f.ConnectionID), len(f.RequestID))
	// Output:
	// {"greeting":"hello, bob"}
	// Forbidden 16 16
}

// A refused handshake, and the headers, query and subprotocols a client
// offers.
func ExampleServer_Dial() {
	t := &exampleT{}
	defer t.done()

	r := wsroutetest.NewRouter(t, nil)
	r.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		if req.Header("authorization") != "Bearer s3cret" {
			return &wsroute.Response{StatusCode: http.StatusUnauthorized, Body: "who are you?"}, nil
		}
		fmt.Println("room:", req.QueryStringParameters["room"])
		return &wsroute.Response{StatusCode: 200, Headers: map[string]string{"Sec-WebSocket-Protocol": "chat.v2"}}, nil
	})
	srv := wsroutetest.NewServer(t, r, nil)

	resp := srv.DialRefused(t, nil)
	fmt.Println(resp.StatusCode)

	c := srv.Dial(t, &wsroutetest.DialOptions{
		Header:       http.Header{"Authorization": {"Bearer s3cret"}},
		Query:        url.Values{"room": {"lobby"}},
		Subprotocols: []string{"chat.v1", "chat.v2"},
	})
	fmt.Println("subprotocol:", c.Subprotocol())
	// Output:
	// 401
	// room: lobby
	// subprotocol: chat.v2
}

// A handler called directly, without a network: Events builds the events a
// router would pass, and a Recorder keeps what the handler pushed.
func ExampleRecorder() {
	ctx := context.Background()

	// The handler under test pushes through the ConnectionManager it is
	// given: the router's in production, a Recorder here.
	broadcast := func(cm wsroute.ConnectionManager, to []string) wsroute.HandlerFunc {
		return func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
			for _, id := range to {
				if err := cm.PostToConnection(ctx, id, []byte(req.Body)); err != nil {
					return nil, err
				}
			}
			return &wsroute.Response{StatusCode: 200, Body: `{"sent":true}`}, nil
		}
	}

	rec := wsroutetest.NewRecorder()
	alice, bob := wsroutetest.NewEvents(), wsroutetest.NewEvents()
	rec.Open(alice.ConnectionID)
	rec.Open(bob.ConnectionID)
	h := broadcast(rec, []string{alice.ConnectionID, bob.ConnectionID})

	req := alice.Message(`{"action":"shout","text":"hi"}`)
	fmt.Println(req.RequestContext.RouteKey, req.RequestContext.EventType)
	resp, err := h(ctx, req)
	fmt.Println(resp.Body, err)
	fmt.Println(rec.Posted(bob.ConnectionID))

	// Bob leaves: pushing to him fails as it would on a router.
	rec.Close(bob.ConnectionID)
	_, err = h(ctx, alice.Message(`{"action":"shout","text":"still there?"}`))
	fmt.Println(err)
	// Output:
	// shout MESSAGE
	// {"sent":true} <nil>
	// [{"action":"shout","text":"hi"}]
	// wsroute: gone
}

// The events of one simulated connection.
func ExampleEvents() {
	ev := wsroutetest.NewEvents()
	connect := ev.Connect(http.Header{"User-Agent": {"demo/1.0"}}, url.Values{"token": {"abc"}})
	msg := ev.Message(`not JSON`)
	bye := ev.Disconnect(1001, "Going away")

	fmt.Println(connect.RequestContext.EventType, connect.QueryStringParameters["token"], connect.Headers["User-Agent"])
	fmt.Println(msg.RequestContext.EventType, msg.RequestContext.RouteKey, len(msg.RequestContext.MessageID))
	fmt.Println(bye.RequestContext.EventType, bye.RequestContext.DisconnectStatusCode, bye.RequestContext.DisconnectReason)
	fmt.Println(connect.RequestContext.ConnectionID == bye.RequestContext.ConnectionID)
	// Output:
	// CONNECT abc demo/1.0
	// MESSAGE $default 16
	// DISCONNECT 1001 Going away
	// true
}

// A client knows its own connection ID, so a test can push to it through
// the router's manager, or check what a handler did to it.
func ExampleClient_ConnectionID() {
	t := &exampleT{}
	defer t.done()
	ctx := context.Background()

	r := wsroutetest.NewRouter(t, nil)
	srv := wsroutetest.NewServer(t, r, nil)
	alice := srv.Dial(t, nil)

	id := alice.ConnectionID()
	if err := r.Connections().PostToConnection(ctx, id, []byte("hello, alice")); err != nil {
		panic(err)
	}
	fmt.Println(alice.Next(ctx))
	if err := r.CloseConnection(ctx, id, 4001, "session expired"); err != nil {
		panic(err)
	}
	fmt.Println(alice.ExpectClose(ctx, 4001)) // close codes are plain numbers
	// Output:
	// hello, alice
	// session expired
}

// SendAction and Events.Action build messages for the router's route
// selection expression, whatever it is.
func ExampleClient_SendAction() {
	t := &exampleT{}
	defer t.done()
	ctx := context.Background()

	r := wsroutetest.NewRouter(t, &wsroute.Options{RouteSelectionExpression: "${request.body.service}/${request.body.action}"})
	r.HandleFunc("chat/join", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: "got " + req.Body}, nil
	})
	srv := wsroutetest.NewServer(t, r, nil)
	c := srv.Dial(t, nil)
	c.SendAction(ctx, "chat/join", map[string]any{"room": "lobby"})
	fmt.Println(c.Next(ctx))

	ev := wsroutetest.NewEventsFor(r)
	req := ev.Action("chat/join", nil)
	fmt.Println(req.RequestContext.RouteKey, req.Body)
	// Output:
	// got {"action":"join","room":"lobby","service":"chat"}
	// chat/join {"action":"join","service":"chat"}
}

// printingT prints, from each line logged through it, the message: what a
// test shows with -v or when it fails.
type printingT struct{ exampleT }

func (p *printingT) Logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if i := strings.Index(line, "msg="); i >= 0 {
		if j := strings.Index(line[i:], " routeKey="); j >= 0 {
			fmt.Println(line[i : i+j])
		}
	}
}

// Routers from NewRouter log through the test's Logf: a handler's panic shows
// beside the test that caused it.
func ExampleNewRouter() {
	t := &printingT{}
	defer t.done()
	ctx := context.Background()

	r := wsroutetest.NewRouter(t, nil)
	r.HandleFunc("divide", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		panic("division by zero")
	})
	c := wsroutetest.NewServer(t, r, nil).Dial(t, nil)
	c.SendAction(ctx, "divide", nil)
	c.ExpectInternalServerError(ctx)
	// Output:
	// msg="wsroute: handler panicked"
}
