package wsroute_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/coder/websocket"

	"github.com/wsroute/wsroute"
)

// Rooms as groups: a handler joins its connection to a room, another posts
// to everyone in it, and a program outside the handlers broadcasts.
func ExampleRouter_Groups() {
	r, err := wsroute.New(nil)
	if err != nil {
		panic(err)
	}
	type message struct {
		Room string `json:"room"`
		Text string `json:"text"`
	}
	r.HandleFunc("join", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		var m message
		if err := json.Unmarshal([]byte(req.Body), &m); err != nil {
			return nil, err
		}
		if err := wsroute.GroupsFromContext(ctx).Join(ctx, m.Room, req.RequestContext.ConnectionID); err != nil {
			return nil, err
		}
		return &wsroute.Response{StatusCode: 200, Body: "joined " + m.Room}, nil
	})
	r.HandleFunc("say", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		var m message
		if err := json.Unmarshal([]byte(req.Body), &m); err != nil {
			return nil, err
		}
		// The frame is copied once for every member; a member that reads
		// too slowly is skipped and counted, never waited for.
		_, err := wsroute.GroupsFromContext(ctx).PostToGroup(ctx, m.Room, []byte(m.Text))
		return nil, err
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())

	ctx := context.Background()
	dial := func() *websocket.Conn {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			panic(err)
		}
		return c
	}
	call := func(c *websocket.Conn, msg string) {
		c.Write(ctx, websocket.MessageText, []byte(msg))
	}
	read := func(c *websocket.Conn) string {
		_, b, _ := c.Read(ctx)
		return string(b)
	}
	alice, bob := dial(), dial()
	defer alice.CloseNow()
	defer bob.CloseNow()
	call(alice, `{"action":"join","room":"lobby"}`)
	fmt.Println("alice:", read(alice))
	call(bob, `{"action":"join","room":"lobby"}`)
	fmt.Println("bob:", read(bob))

	call(alice, `{"action":"say","room":"lobby","text":"hello, lobby"}`)
	fmt.Println("alice:", read(alice))
	fmt.Println("bob:", read(bob))

	members, _ := r.Groups().Members(ctx, "lobby")
	fmt.Println("members:", len(members))
	res, _ := r.Groups().Broadcast(ctx, []byte("the server is going down at noon"))
	fmt.Printf("broadcast: %+v\n", res)
	fmt.Println("bob:", read(bob))
	// Output:
	// alice: joined lobby
	// bob: joined lobby
	// alice: hello, lobby
	// bob: hello, lobby
	// members: 2
	// broadcast: {Delivered:2 Skipped:0 Gone:0 Published:false}
	// bob: the server is going down at noon
}
