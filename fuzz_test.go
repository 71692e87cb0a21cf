package wsroute_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/wsroute/wsroute"
)

// FuzzFrame sends arbitrary text frames through a real connection. Both the
// "echo" route and $default answer with the frame, so every frame of valid
// UTF-8 must come back unchanged (but the empty one, as an empty body sends
// nothing), whatever route it selects or fails to select; invalid UTF-8 must close the connection with 1007; and a bystander
// connection must keep working.
func FuzzFrame(f *testing.F) {
	for _, s := range []string{
		`{"action":"echo"}`, `{"action":"$connect"}`, `{"action":"$disconnect"}`, `{"action":"$default"}`,
		`{"action":["a",{"b":null}]}`, `not json`, ``, ` `, `{"action":"echo"`, `[[[[[[[[[[`, "\xff\xfe",
		`{"action":"e\u0063ho"}`, `{"action":"echo","action":"other"}`, `{"action":1e999}`,
	} {
		f.Add(s)
	}
	r, err := wsroute.New(nil)
	if err != nil {
		f.Fatal(err)
	}
	r.HandleFunc("echo", echo)
	r.HandleFunc(wsroute.RouteDefault, echo)
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())
	ctx := context.Background()
	bystander, _, err := websocket.Dial(ctx, wsURL(srv), nil)
	if err != nil {
		f.Fatal(err)
	}
	defer bystander.CloseNow()

	f.Fuzz(func(t *testing.T, frame string) {
		if len(frame) > 4096 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		want := frame
		if frame == "" {
			// An empty body sends nothing back: the next frame's answer
			// must be the first to arrive.
			want = `{"action":"echo","after":"empty"}`
			if err := c.Write(ctx, websocket.MessageText, []byte(want)); err != nil {
				t.Fatal(err)
			}
		}
		typ, got, err := c.Read(ctx)
		if !utf8.ValidString(frame) {
			if code := websocket.CloseStatus(err); code != websocket.StatusInvalidFramePayloadData {
				t.Fatalf("invalid UTF-8 %q: got %v %q %v, want close 1007", frame, typ, got, err)
			}
			return
		}
		if err != nil || typ != websocket.MessageText || string(got) != want {
			t.Fatalf("frame %q: got %v %q %v, want the frame back", frame, typ, got, err)
		}
		c.Close(websocket.StatusNormalClosure, "")

		if err := bystander.Write(ctx, websocket.MessageText, []byte(`{"action":"echo","n":1}`)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := bystander.Read(ctx); err != nil || string(got) != `{"action":"echo","n":1}` {
			t.Fatalf("bystander: %q %v", got, err)
		}
	})
}
