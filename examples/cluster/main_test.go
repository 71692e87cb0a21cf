package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain fails the run when a goroutine outlives the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(10 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			var leaked []string
			for i, g := range strings.Split(string(buf), "\n\n") {
				if i > 0 && (strings.Contains(g, "github.com/wsroute/") || strings.Contains(g, "github.com/nats-io/") ||
					strings.Contains(g, "github.com/coder/websocket") || strings.Contains(g, "net/http.")) {
					leaked = append(leaked, g)
				}
			}
			if len(leaked) == 0 {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goroutines outlived the tests:\n\n%s\n", strings.Join(leaked, "\n\n"))
				code = 1
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	os.Exit(code)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRun runs the example as a user does: two users on two nodes chat, in
// private and in a room, see each other online, and the third node's
// management API reaches one of them.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-nats-addr", "127.0.0.1:0", "-addrs", "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0", "-bearer-token", "tok"}, pw, &logs)
		pw.Close()
	}()
	nodeLine := regexp.MustCompile(`^Node ([ABC]):  chat page (http://\S+)/ `)
	nodes := map[string]string{}
	sc := bufio.NewScanner(pr)
	for len(nodes) < 3 && sc.Scan() {
		if m := nodeLine.FindStringSubmatch(sc.Text()); m != nil {
			nodes[m[1]] = m[2]
		}
	}
	require.Len(t, nodes, 3, "logs: %s", logs.String())
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	resp, err := http.Get(nodes["B"] + "/")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(page), "<html")

	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	dial := func(node, user string) *websocket.Conn {
		ws, _, err := websocket.Dial(wctx, "ws"+strings.TrimPrefix(nodes[node], "http")+"/ws", nil)
		require.NoError(t, err)
		require.NoError(t, ws.Write(wctx, websocket.MessageText, []byte(`{"action":"registerUser","userId":"`+user+`"}`)))
		return ws
	}
	// next returns the next frame of the given type.
	next := func(ws *websocket.Conn, typ string) map[string]any {
		for {
			_, b, err := ws.Read(wctx)
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(b, &m))
			if m["type"] == typ {
				return m
			}
		}
	}
	alice := dial("A", "alice")
	defer alice.CloseNow()
	next(alice, "registrationSuccess")
	bob := dial("B", "bob")
	defer bob.CloseNow()
	next(bob, "registrationSuccess")
	// Presence and rooms are groups, and span the nodes: bob, on B, is told
	// who is online by the app's GroupManager on A, and shares a room with
	// alice.
	presence := func(ws *websocket.Conn, want string) {
		for {
			users, _ := json.Marshal(next(ws, "presence")["users"])
			if string(users) == want {
				return
			}
		}
	}
	presence(bob, `["alice","bob"]`)
	presence(alice, `["alice","bob"]`)

	require.NoError(t, alice.Write(wctx, websocket.MessageText, []byte(`{"action":"sendPrivateMessage","targetUserId":"bob","message":"hi bob"}`)))
	m := next(bob, "privateMessage")
	assert.Equal(t, "alice", m["fromUserId"])
	assert.Equal(t, "hi bob", m["message"])

	say := func(ws *websocket.Conn, frame string) {
		require.NoError(t, ws.Write(wctx, websocket.MessageText, []byte(frame)))
	}
	say(alice, `{"action":"join","room":"lobby"}`)
	next(alice, "joinSuccess")
	say(bob, `{"action":"join","room":"lobby"}`)
	assert.Equal(t, "bob", next(alice, "userJoined")["userId"])
	next(bob, "joinSuccess")
	say(bob, `{"action":"sendMessage","room":"lobby","message":"hello lobby"}`)
	for _, ws := range []*websocket.Conn{alice, bob} {
		m := next(ws, "roomMessage")
		assert.Equal(t, "bob", m["fromUserId"])
		assert.Equal(t, "hello lobby", m["message"])
	}

	registered := regexp.MustCompile(`userId=alice connectionId="?([A-Za-z0-9_=-]+)`)
	var id string
	require.Eventually(t, func() bool {
		if mm := registered.FindStringSubmatch(logs.String()); mm != nil {
			id = mm[1]
		}
		return id != ""
	}, 10*time.Second, 10*time.Millisecond)
	req, _ := http.NewRequest(http.MethodPost, nodes["C"]+"/ws/@connections/"+id, strings.NewReader(`{"type":"notice","message":"from C"}`))
	req.Header.Set("Authorization", "Bearer tok")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "from C", next(alice, "notice")["message"])

	alice.Close(websocket.StatusNormalClosure, "")
	bob.Close(websocket.StatusNormalClosure, "")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after ctx ended")
	}
}
