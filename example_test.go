package wsroute_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/wsroute/wsroute"
)

// A two-way route: the handler's Response body goes back to the caller. A
// message that selects no route, with no $default, gets API Gateway's
// Forbidden frame.
func ExampleRouter() {
	r, err := wsroute.New(nil) // route on $request.body.action
	if err != nil {
		panic(err)
	}
	r.HandleFunc("greet", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{StatusCode: 200, Body: `{"hello":"world"}`}, nil
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()

	c.Write(ctx, websocket.MessageText, []byte(`{"action":"greet"}`))
	_, reply, _ := c.Read(ctx)
	fmt.Println(string(reply))

	c.Write(ctx, websocket.MessageText, []byte(`{"action":"unknown"}`))
	_, reply, _ = c.Read(ctx)
	fmt.Println(strings.HasPrefix(string(reply), `{"message": "Forbidden", "connectionId":"`))
	// Output:
	// {"hello":"world"}
	// true
}

// A route selection expression with two variables: the route key is
// "<service>/<action>".
func ExampleNew() {
	r, err := wsroute.New(&wsroute.Options{
		RouteSelectionExpression: "${request.body.service}/${request.body.action}",
	})
	if err != nil {
		panic(err)
	}
	r.HandleFunc("chat/join", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: "joined via " + req.RequestContext.RouteKey}, nil
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())

	ctx := context.Background()
	c, _, _ := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageText, []byte(`{"service":"chat","action":"join","room":"r1"}`))
	_, reply, _ := c.Read(ctx)
	fmt.Println(string(reply))
	// Output: joined via chat/join
}

// A handler pushes to another connection by ID through the ConnectionManager
// in its context.
func ExampleConnectionsFromContext() {
	r, _ := wsroute.New(nil)
	ids := make(chan string, 1)
	r.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		ids <- req.RequestContext.ConnectionID
		return nil, nil
	})
	r.HandleFunc("poke", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		var msg struct{ To string }
		if err := json.Unmarshal([]byte(req.Body), &msg); err != nil {
			return nil, err
		}
		cm := wsroute.ConnectionsFromContext(ctx)
		return nil, cm.PostToConnection(ctx, msg.To, []byte("poked by "+req.RequestContext.ConnectionID[:4]+"…"))
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())

	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	alice, _, _ := websocket.Dial(ctx, url, nil)
	defer alice.CloseNow()
	<-ids
	bob, _, _ := websocket.Dial(ctx, url, nil)
	defer bob.CloseNow()
	bobID := <-ids

	alice.Write(ctx, websocket.MessageText, []byte(`{"action":"poke","to":"`+bobID+`"}`))
	_, got, _ := bob.Read(ctx)
	fmt.Println(strings.HasPrefix(string(got), "poked by "))
	// Output: true
}

// An authorizer checks the Authorization header on connect; what it returns
// is on every later event of the connection.
func ExampleOptions_authorizer() {
	tokens := map[string]string{"Bearer t-alice": "alice"}
	router, err := wsroute.New(&wsroute.Options{
		IdentitySources: []string{"route.request.header.Authorization"},
		Authorizer: func(ctx context.Context, req *wsroute.Request) (*wsroute.AuthorizerResult, error) {
			user, ok := tokens[req.Header("Authorization")] // any case
			if !ok {
				return nil, wsroute.ErrUnauthorized // 401; wsroute.ErrAccessDenied is 403
			}
			return &wsroute.AuthorizerResult{PrincipalID: user, Context: map[string]any{"plan": "pro"}}, nil
		},
		APIKeys: []string{"k-123"}, // x-api-key required, else 403
	})
	if err != nil {
		panic(err)
	}
	router.HandleFunc("whoami", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		a := req.RequestContext.Authorizer
		return &wsroute.Response{Body: fmt.Sprintf("%v on the %v plan", a["principalId"], a["plan"])}, nil
	})
	srv := httptest.NewServer(router)
	defer srv.Close()
	defer router.Shutdown(context.Background())

	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	_, resp, _ := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"X-Api-Key": {"k-123"}}})
	fmt.Println(resp.StatusCode)
	c, _, _ := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{
		"X-Api-Key": {"k-123"}, "Authorization": {"Bearer t-alice"}}})
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`))
	_, got, _ := c.Read(ctx)
	fmt.Println(string(got))
	// Output:
	// 401
	// alice on the pro plan
}

// Middleware that wraps every route, $connect and $disconnect included: here
// it logs each event, and a recovery middleware turns a panic into a reply.
func ExampleRouter_Use() {
	r, err := wsroute.New(nil)
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	var seen []string
	logEvents := func(next wsroute.Handler) wsroute.Handler {
		return wsroute.HandlerFunc(func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
			mu.Lock()
			seen = append(seen, req.RequestContext.RouteKey)
			mu.Unlock()
			return next.ServeEvent(ctx, req)
		})
	}
	recoverPanics := func(next wsroute.Handler) wsroute.Handler {
		return wsroute.HandlerFunc(func(ctx context.Context, req *wsroute.Request) (resp *wsroute.Response, err error) {
			defer func() {
				if p := recover(); p != nil {
					resp = &wsroute.Response{Body: fmt.Sprintf(`{"error":%q}`, fmt.Sprint(p))}
				}
			}()
			return next.ServeEvent(ctx, req)
		})
	}
	r.Use(logEvents, recoverPanics) // logEvents runs first
	disconnected := make(chan struct{})
	r.HandleFunc(wsroute.RouteDisconnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		close(disconnected)
		return nil, nil
	})
	r.HandleFunc("risky", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		panic("not implemented")
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		panic(err)
	}
	c.Write(ctx, websocket.MessageText, []byte(`{"action":"risky"}`))
	_, reply, _ := c.Read(ctx)
	fmt.Println(string(reply))
	c.Close(websocket.StatusNormalClosure, "")
	<-disconnected

	mu.Lock()
	fmt.Println(seen) // $connect too, although it has no route
	mu.Unlock()
	// Output:
	// {"error":"not implemented"}
	// [$connect risky $disconnect]
}

// Count and list the router's connections, as a metrics scrape or an admin
// page would.
func ExampleRouter_OpenConnections() {
	r, err := wsroute.New(&wsroute.Options{
		Authorizer: func(ctx context.Context, req *wsroute.Request) (*wsroute.AuthorizerResult, error) {
			return &wsroute.AuthorizerResult{PrincipalID: req.QueryStringParameters["user"]}, nil
		},
	})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())

	ctx := context.Background()
	for _, user := range []string{"alice", "bob"} {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"?user="+user, nil)
		if err != nil {
			panic(err)
		}
		defer c.CloseNow()
	}

	fmt.Println("open:", r.ConnectionCount())
	var users []string
	for info := range r.OpenConnections() {
		users = append(users, fmt.Sprintf("%s from %s", info.Authorizer["principalId"], info.Identity.SourceIP))
	}
	slices.Sort(users)
	fmt.Println(users)
	// Output:
	// open: 2
	// [alice from 127.0.0.1 bob from 127.0.0.1]
}

// Close a connection with a code and reason of one's own; its $disconnect
// route reports them.
func ExampleRouter_CloseConnection() {
	r, err := wsroute.New(nil)
	if err != nil {
		panic(err)
	}
	ids := make(chan string, 1)
	r.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		ids <- req.RequestContext.ConnectionID
		return nil, nil
	})
	disconnected := make(chan string, 1)
	r.HandleFunc(wsroute.RouteDisconnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		disconnected <- fmt.Sprint(req.RequestContext.DisconnectStatusCode, " ", req.RequestContext.DisconnectReason)
		return nil, nil
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()

	// 4000-4999 are for applications.
	if err := r.CloseConnection(ctx, <-ids, 4001, "session expired"); err != nil {
		panic(err)
	}
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	errors.As(err, &ce)
	fmt.Println("client:", int(ce.Code), ce.Reason)
	fmt.Println("$disconnect:", <-disconnected)

	fmt.Println(r.CloseConnection(ctx, "AAAAAAAAAAAAAAA=", 1006, ""))
	// Output:
	// client: 4001 session expired
	// $disconnect: 4001 session expired
	// wsroute: invalid close code or reason: code 1006 may not be sent (use 1000-1003, 1007-1014, or 4000-4999 for your own)
}

// Build the message a route selection expression sends to a route: what a Go
// client or a test needs to know about the expression, and nothing more.
func ExampleExpression_Message() {
	e := wsroute.MustParseExpression("${request.body.service}/${request.body.action}")
	msg, err := e.Message("chat/join", map[string]any{"room": "lobby"})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(msg))
	key, _ := e.Evaluate(msg)
	fmt.Println(key)

	_, err = e.Message("join", nil) // the "/" is missing
	fmt.Println(err)
	// Output:
	// {"action":"join","room":"lobby","service":"chat"}
	// chat/join
	// wsroute: no message makes the route selection expression "${request.body.service}/${request.body.action}" yield the route key "join"
}

// Headers keep API Gateway's spelling; Request.Header finds them whatever the
// case.
func ExampleRequest_Header() {
	req := &wsroute.Request{
		Headers:           map[string]string{"Sec-WebSocket-Protocol": "chat.v2", "X-Trace": "b"},
		MultiValueHeaders: map[string][]string{"Sec-WebSocket-Protocol": {"chat.v2"}, "X-Trace": {"a", "b"}},
	}
	fmt.Printf("%q\n", http.Header(req.MultiValueHeaders).Get("Sec-WebSocket-Protocol")) // Go's spelling misses it
	fmt.Println(req.Header("sec-websocket-protocol"))
	fmt.Println(req.HeaderValues("x-trace"))
	// Output:
	// ""
	// chat.v2
	// [a b]
}

// Compression is negotiated with clients that offer it.
func ExampleOptions_compression() {
	r, err := wsroute.New(&wsroute.Options{Compression: wsroute.CompressionNoContextTakeover})
	if err != nil {
		panic(err)
	}
	r.HandleFunc("echo", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: req.Body}, nil
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())

	ctx := context.Background()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{
		CompressionMode: websocket.CompressionNoContextTakeover,
	})
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	fmt.Println(resp.Header.Get("Sec-WebSocket-Extensions"))
	msg := `{"action":"echo","text":"` + strings.Repeat("la ", 300) + `"}`
	c.Write(ctx, websocket.MessageText, []byte(msg))
	_, reply, _ := c.Read(ctx)
	fmt.Println(string(reply) == msg)
	// Output:
	// permessage-deflate; client_no_context_takeover; server_no_context_takeover
	// true
}

// Code that may run outside a router checks for a ConnectionManager;
// handlers simply call ConnectionsFromContext.
func ExampleLookupConnections() {
	notify := func(ctx context.Context, id string, msg []byte) error {
		cm, ok := wsroute.LookupConnections(ctx)
		if !ok {
			return errors.New("not in a router: nothing to notify")
		}
		return cm.PostToConnection(ctx, id, msg)
	}
	fmt.Println(notify(context.Background(), "AAAAAAAAAAAAAAA=", []byte("hi")))

	r, _ := wsroute.New(nil)
	ctx := wsroute.ContextWithConnections(context.Background(), r.Connections())
	fmt.Println(notify(ctx, "AAAAAAAAAAAAAAA=", []byte("hi")))
	// Output:
	// not in a router: nothing to notify
	// wsroute: gone
}
