package wsnats_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/wsroute/wsroute"
	wsnats "github.com/wsroute/wsroute/nats"
)

// Two routers, as two processes would run them, joined by a NATS server
// (embedded here; in production, your NATS cluster's URLs): router A posts
// to a client of router B.
func Example() {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	ns.Start()
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		log.Fatal("NATS server not ready")
	}

	newNode := func() *wsroute.Router {
		bp, err := wsnats.Connect(ns.ClientURL(), &wsnats.Options{API: "chat"})
		if err != nil {
			log.Fatal(err)
		}
		r, err := wsroute.New(&wsroute.Options{Backplane: bp})
		if err != nil {
			log.Fatal(err)
		}
		return r
	}
	a, b := newNode(), newNode()
	defer a.Shutdown(context.Background())
	defer b.Shutdown(context.Background())

	// A client of B asks for its connection ID.
	b.HandleFunc("whoami", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: req.RequestContext.ConnectionID}, nil
	})
	srv := httptest.NewServer(b)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ws.CloseNow()
	_ = ws.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`))
	_, id, err := ws.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}

	// A reaches it, as it would reach its own.
	if err := a.Connections().PostToConnection(ctx, string(id), []byte("hello from A")); err != nil {
		log.Fatal(err)
	}
	_, msg, err := ws.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(msg))
	// Output: hello from A
}

// The wiring of a node in production, as in the README: nats.go's options
// (credentials, TLS, name, reconnect settings) pass through Connect.
func ExampleConnect() {
	bp, err := wsnats.Connect("nats://nats-1:4222,nats://nats-2:4222", // nats.go's options pass through:
		&wsnats.Options{API: "chat"}, nats.UserCredentials("node.creds"), nats.Name("chat-1"))
	if err != nil {
		log.Fatal(err)
	}
	router, err := wsroute.New(&wsroute.Options{Backplane: bp})
	if err != nil {
		log.Fatal(err)
	}
	// Routes, ConnectionsFromContext and NewManagementHandler(router.Connections(), …)
	// are as before; router.Shutdown closes bp.
	_ = router
}

// Groups span the nodes: router A puts a client of A and a client of B in a
// group, and one post from A reaches both.
func Example_groups() {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	ns.Start()
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		log.Fatal("NATS server not ready")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// node starts a router with a client, which learns its connection ID.
	var stops []func()
	defer func() { // the routers, before the NATS server
		for _, stop := range stops {
			stop()
		}
	}()
	node := func() (*wsroute.Router, *websocket.Conn, string) {
		bp, err := wsnats.Connect(ns.ClientURL(), &wsnats.Options{API: "chat"})
		if err != nil {
			log.Fatal(err)
		}
		r, err := wsroute.New(&wsroute.Options{Backplane: bp})
		if err != nil {
			log.Fatal(err)
		}
		r.HandleFunc("whoami", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
			return &wsroute.Response{Body: req.RequestContext.ConnectionID}, nil
		})
		srv := httptest.NewServer(r)
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			log.Fatal(err)
		}
		_ = ws.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`))
		_, id, err := ws.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		stops = append(stops, func() {
			_ = ws.CloseNow()
			_ = r.Shutdown(context.Background())
			srv.Close()
		})
		return r, ws, string(id)
	}
	a, wsA, idA := node()
	_, wsB, idB := node()
	groups := a.Groups()
	for _, id := range []string{idA, idB} { // idB is a connection of the other router
		if err := groups.Join(ctx, "lobby", id); err != nil {
			log.Fatal(err)
		}
	}
	res, err := groups.PostToGroup(ctx, "lobby", []byte("hello, lobby"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("A's own members: %d, published to the other nodes: %v\n", res.Delivered, res.Published)
	for _, ws := range []*websocket.Conn{wsA, wsB} {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(msg))
	}
	// Output:
	// A's own members: 1, published to the other nodes: true
	// hello, lobby
	// hello, lobby
}
