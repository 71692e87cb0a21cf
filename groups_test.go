package wsroute_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// groupRoutes registers routes that join, leave and post to groups from
// handlers: {"action":"join","group":"g"} answers "joined g", and so on.
func groupRoutes(r *wsroute.Router) {
	type msg struct {
		Group string `json:"group"`
		Data  string `json:"data"`
	}
	decode := func(req *wsroute.Request) (msg, error) {
		var m msg
		err := json.Unmarshal([]byte(req.Body), &m)
		return m, err
	}
	r.HandleFunc("join", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		m, err := decode(req)
		if err != nil {
			return nil, err
		}
		if err := wsroute.GroupsFromContext(ctx).Join(ctx, m.Group, req.RequestContext.ConnectionID); err != nil {
			return nil, err
		}
		return &wsroute.Response{StatusCode: 200, Body: "joined " + m.Group}, nil
	})
	r.HandleFunc("leave", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		m, err := decode(req)
		if err != nil {
			return nil, err
		}
		if err := wsroute.GroupsFromContext(ctx).Leave(ctx, m.Group, req.RequestContext.ConnectionID); err != nil {
			return nil, err
		}
		return &wsroute.Response{StatusCode: 200, Body: "left " + m.Group}, nil
	})
	r.HandleFunc("gpost", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		m, err := decode(req)
		if err != nil {
			return nil, err
		}
		res, err := wsroute.GroupsFromContext(ctx).PostToGroup(ctx, m.Group, []byte(m.Data))
		if err != nil {
			return nil, err
		}
		return &wsroute.Response{StatusCode: 200, Body: fmt.Sprintf("posted %d %d %d", res.Delivered, res.Skipped, res.Gone)}, nil
	})
}

// groupClient is a connection of a group test, read by a pump.
type groupClient struct {
	*client
	id string
	p  *pump
}

func dialGroupClient(t *testing.T, s *site, name string) *groupClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := dialClient(ctx, s.url(name), dialOpts{})
	require.NoError(t, err)
	t.Cleanup(func() { c.ws.CloseNow() })
	id := s.log.id(name)
	require.NotEmpty(t, id)
	return &groupClient{client: c, id: id, p: startPump(c.ws)}
}

// call sends msg and returns the reply.
func (c *groupClient) call(t *testing.T, msg string) string {
	t.Helper()
	send(t, c.ws, msg)
	m, err := c.p.next(testTimeout)
	require.NoError(t, err)
	return m
}

func (c *groupClient) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		m, err := c.p.next(testTimeout)
		require.NoError(t, err)
		require.Equal(t, w, m)
	}
}

// expectNothing checks that nothing more arrives; the caller has made sure
// that anything sent earlier would have arrived by now (a marker frame).
func (c *groupClient) expectNothing(t *testing.T) {
	t.Helper()
	select {
	case m := <-c.p.msgs:
		t.Fatalf("%s got %q, want nothing", c.id, m)
	default:
	}
}

func members(t *testing.T, r *wsroute.Router, group string) []string {
	t.Helper()
	m, err := r.Groups().Members(context.Background(), group)
	require.NoError(t, err)
	return m
}

func sortedIDs(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func TestGroupJoinLeavePost(t *testing.T) {
	s := newSite(t, nil)
	groupRoutes(s.r)
	g := s.r.Groups()
	ctx := context.Background()
	a, b, c := dialGroupClient(t, s, "a"), dialGroupClient(t, s, "b"), dialGroupClient(t, s, "c")

	// From handlers and from outside the router.
	require.Equal(t, "joined room", a.call(t, `{"action":"join","group":"room"}`))
	require.Equal(t, "joined room", a.call(t, `{"action":"join","group":"room"}`), "joining twice is harmless")
	require.NoError(t, g.Join(ctx, "room", b.id))
	require.NoError(t, g.Join(ctx, "other", c.id))
	assert.Equal(t, sortedIDs(a.id, b.id), members(t, s.r, "room"))
	assert.Equal(t, []string{c.id}, members(t, s.r, "other"))
	assert.Empty(t, members(t, s.r, "nobody"))

	// A post reaches each member once, and only members; the poster learns
	// how many got it.
	require.Equal(t, "posted 2 0 0", c.call(t, `{"action":"gpost","group":"room","data":"hello room"}`))
	a.expect(t, "hello room")
	b.expect(t, "hello room")
	res, err := g.PostToGroup(ctx, "other", []byte("to other"))
	require.NoError(t, err)
	assert.Equal(t, wsroute.PostResult{Delivered: 1}, res)
	c.expect(t, "to other")
	a.expectNothing(t)
	b.expectNothing(t)

	// Binary data goes out as a binary frame, as with PostToConnection.
	res, err = g.PostToGroup(ctx, "other", []byte{0xff, 0})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Delivered)
	c.expect(t, "\xff\x00")

	// Leaving, from a handler and from outside.
	require.Equal(t, "left room", a.call(t, `{"action":"leave","group":"room"}`))
	require.Equal(t, "left room", a.call(t, `{"action":"leave","group":"room"}`), "leaving twice is harmless")
	assert.Equal(t, []string{b.id}, members(t, s.r, "room"))
	require.NoError(t, g.Leave(ctx, "room", b.id))
	assert.Empty(t, members(t, s.r, "room"))
	res, err = g.PostToGroup(ctx, "room", []byte("nobody hears"))
	require.NoError(t, err)
	assert.Equal(t, wsroute.PostResult{}, res)

	// Broadcast reaches every connection, in groups or not.
	res, err = g.Broadcast(ctx, []byte("all"))
	require.NoError(t, err)
	assert.Equal(t, wsroute.PostResult{Delivered: 3}, res)
	for _, cl := range []*groupClient{a, b, c} {
		cl.expect(t, "all")
	}
	a.expectNothing(t)
	b.expectNothing(t)

	// Errors.
	for _, name := range []string{"", strings.Repeat("x", 129), "bad\nname", "\xff"} {
		assert.ErrorIs(t, g.Join(ctx, name, a.id), wsroute.ErrInvalidGroup, "%q", name)
		assert.ErrorIs(t, g.Leave(ctx, name, a.id), wsroute.ErrInvalidGroup, "%q", name)
		_, err := g.PostToGroup(ctx, name, []byte("x"))
		assert.ErrorIs(t, err, wsroute.ErrInvalidGroup, "%q", name)
		_, err = g.Members(ctx, name)
		assert.ErrorIs(t, err, wsroute.ErrInvalidGroup, "%q", name)
	}
	require.NoError(t, g.Join(ctx, strings.Repeat("é", 64), a.id), "128 bytes of UTF-8")
	assert.ErrorIs(t, g.Join(ctx, "room", "unknownID"), wsroute.ErrGone)
	_, err = g.PostToGroup(ctx, "other", make([]byte, 128<<10+1))
	assert.ErrorIs(t, err, wsroute.ErrPayloadTooLarge)
	_, err = g.Broadcast(ctx, make([]byte, 128<<10+1))
	assert.ErrorIs(t, err, wsroute.ErrPayloadTooLarge)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, g.Join(cancelled, "room", a.id), context.Canceled)
	_, err = g.PostToGroup(cancelled, "room", nil)
	assert.ErrorIs(t, err, context.Canceled)
	c.expectNothing(t)

	// Outside a router's handler there is no GroupManager in the context.
	assert.Nil(t, wsroute.GroupsFromContext(ctx))
	assert.NotNil(t, wsroute.GroupsFromContext(wsroute.ContextWithConnections(ctx, s.r.Connections())))
}

// TestGroupMembershipEndsWithTheConnection ends members of groups in every
// way a connection can end, and checks that each is in no group any more
// when its $disconnect runs, and that the others still get the group's
// posts.
func TestGroupMembershipEndsWithTheConnection(t *testing.T) {
	const maxMessage = 1024
	type ended struct {
		code   int
		groups []string // groups the connection was still in at $disconnect
	}
	var mu sync.Mutex
	disconnected := map[string]chan ended{}
	idOf := map[string]string{}
	newGroupSite := func(opts *wsroute.Options) (*wsroute.Router, string) {
		r := newRouter(t, opts)
		groupRoutes(r)
		whoamiRoute(r)
		r.HandleFunc(wsroute.RouteConnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			idOf[req.QueryStringParameters["name"]] = req.RequestContext.ConnectionID
			disconnected[req.RequestContext.ConnectionID] = make(chan ended, 2)
			return nil, nil
		})
		r.HandleFunc(wsroute.RouteDisconnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
			id := req.RequestContext.ConnectionID
			var in []string
			for _, g := range []string{"all", "odd", "even"} {
				m, err := wsroute.GroupsFromContext(ctx).Members(ctx, g)
				if err != nil {
					return nil, err
				}
				if slices.Contains(m, id) {
					in = append(in, g)
				}
			}
			// Joining now fails: the connection is gone.
			if err := wsroute.GroupsFromContext(ctx).Join(ctx, "all", id); err != wsroute.ErrGone {
				in = append(in, fmt.Sprintf("Join at $disconnect: %v", err))
			}
			mu.Lock()
			ch := disconnected[id]
			mu.Unlock()
			ch <- ended{req.RequestContext.DisconnectStatusCode, in}
			return nil, nil
		})
		srv, _ := serveTracked(t, r)
		return r, wsURL(srv)
	}
	main, mainURL := newGroupSite(&wsroute.Options{MaxMessageSize: maxMessage})
	idle, idleURL := newGroupSite(&wsroute.Options{IdleTimeout: 300 * time.Millisecond})

	ctx := context.Background()
	writeMsg := func(typ websocket.MessageType, data string) func(*client) error {
		return func(c *client) error { return c.ws.Write(ctx, typ, []byte(data)) }
	}
	endings := []struct {
		name string
		r    *wsroute.Router
		code int
		end  func(c *client, id string) error
	}{
		{"close frame", main, 4001, func(c *client, _ string) error { return c.ws.Close(4001, "bye") }},
		{"close frame without status", main, 1005, func(c *client, _ string) error { return c.ws.Close(websocket.StatusNoStatusRcvd, "") }},
		{"TCP reset", main, 1006, func(c *client, _ string) error { return c.reset() }},
		{"DeleteConnection", main, 1000, func(_ *client, id string) error {
			return main.Connections().DeleteConnection(ctx, id)
		}},
		{"oversize frame", main, 1009, func(c *client, _ string) error {
			return writeMsg(websocket.MessageText, strings.Repeat("x", maxMessage+1))(c)
		}},
		{"binary frame", main, 1003, func(c *client, _ string) error { return writeMsg(websocket.MessageBinary, "\x00")(c) }},
		{"invalid UTF-8", main, 1007, func(c *client, _ string) error { return writeMsg(websocket.MessageText, "\xff")(c) }},
		{"idle timeout", idle, 1001, func(*client, string) error { return nil }},
		{"Shutdown", idle, 1001, func(c *client, _ string) error {
			go func() { _, _ = closeStatus(c.ws, testTimeout) }() // the client answers the close frame
			return idle.Shutdown(ctx)
		}},
	}
	// A bystander in every group of the main router sees the posts before and
	// after each ending.
	var bystander *groupClient
	{
		c, err := dialClient(ctx, mainURL+"?name=bystander", dialOpts{})
		require.NoError(t, err)
		t.Cleanup(func() { c.ws.CloseNow() })
		mu.Lock()
		bystander = &groupClient{client: c, id: idOf["bystander"], p: startPump(c.ws)}
		mu.Unlock()
		for _, g := range []string{"all", "odd", "even"} {
			require.NoError(t, main.Groups().Join(ctx, g, bystander.id))
		}
	}
	for i, e := range endings {
		t.Run(e.name, func(t *testing.T) {
			name := fmt.Sprint("c", i)
			url := mainURL
			if e.r == idle {
				url = idleURL
			}
			c, err := dialClient(ctx, url+"?name="+name, dialOpts{})
			require.NoError(t, err)
			defer c.ws.CloseNow()
			mu.Lock()
			id := idOf[name]
			ch := disconnected[id]
			mu.Unlock()
			// Joined from a handler and from outside.
			for _, g := range []string{"all", []string{"even", "odd"}[i%2]} {
				require.NoError(t, c.ws.Write(ctx, websocket.MessageText, []byte(`{"action":"join","group":"`+g+`"}`)))
				reply, err := readTextMsg(c.ws, testTimeout)
				require.NoError(t, err)
				require.Equal(t, "joined "+g, reply)
			}
			require.NoError(t, e.r.Groups().Join(ctx, "extra", id))
			require.Contains(t, members(t, e.r, "all"), id)
			require.Contains(t, members(t, e.r, "extra"), id)

			require.NoError(t, e.end(c, id))
			if e.name != "TCP reset" && e.name != "Shutdown" {
				// The client reads on until the close handshake completes.
				_, _ = closeStatus(c.ws, testTimeout)
			}
			select {
			case got := <-ch:
				assert.Equal(t, e.code, got.code)
				assert.Empty(t, got.groups, "groups of %s at its $disconnect", e.name)
			case <-time.After(testTimeout):
				t.Fatal("no $disconnect")
			}
			assert.NotContains(t, members(t, e.r, "all"), id)
			assert.NotContains(t, members(t, e.r, "extra"), id)
			if e.r == main {
				res, err := main.Groups().PostToGroup(ctx, "all", []byte("after "+e.name))
				require.NoError(t, err)
				assert.Equal(t, wsroute.PostResult{Delivered: 1}, res, "only the bystander is left")
				bystander.expect(t, "after "+e.name)
			}
		})
	}
	for _, r := range []*wsroute.Router{main, idle} {
		for _, g := range []string{"odd", "even", "extra"} {
			if r == main && g != "extra" {
				assert.Equal(t, []string{bystander.id}, members(t, r, g))
				continue
			}
			assert.Empty(t, members(t, r, g), "group %s", g)
		}
	}
}

// TestGroupSlowMemberNeverDelaysOthers: members that never read, more of them
// than the writer pool has workers, fill their sockets and queues; the other
// members get every post all the same, in order, and the slow ones are
// reported skipped.
func TestGroupSlowMemberNeverDelaysOthers(t *testing.T) {
	s := newSite(t, &wsroute.Options{SendQueueSize: 8})
	ctx := context.Background()
	g := s.r.Groups()
	slowN, fastN, posts := runtime.GOMAXPROCS(0)+3, 6, 300
	for i := range slowN {
		name := fmt.Sprint("slow", i)
		c, err := dialClient(ctx, s.url(name), dialOpts{readBuf: 4096})
		require.NoError(t, err)
		t.Cleanup(func() { c.ws.CloseNow() }) // never read
		require.NoError(t, g.Join(ctx, "g", s.log.id(name)))
	}
	fast := make([]*groupClient, fastN)
	for i := range fast {
		fast[i] = dialGroupClient(t, s, fmt.Sprint("fast", i))
		require.NoError(t, g.Join(ctx, "g", fast[i].id))
	}
	payload := strings.Repeat("p", 16<<10)
	var skipped, gone int
	for n := range posts {
		res, err := g.PostToGroup(ctx, "g", []byte(fmt.Sprintf("%04d %s", n, payload)))
		require.NoError(t, err)
		skipped += res.Skipped
		gone += res.Gone
		require.GreaterOrEqual(t, res.Delivered, fastN, "post %d: %+v", n, res)
		for _, f := range fast {
			m, err := f.p.next(testTimeout)
			require.NoError(t, err, "post %d to a fast member", n)
			require.Equal(t, fmt.Sprintf("%04d", n), m[:4])
		}
	}
	t.Logf("%d posts: %d skipped, %d gone", posts, skipped, gone)
	assert.Positive(t, skipped, "the slow members' queues filled up")
	assert.Zero(t, gone)
}

// TestGroupConcurrentJoinLeavePost joins, leaves and posts from many
// goroutines at once, from handlers and from outside, while members come and
// go. Every post reaches the members that stay, exactly once and in each
// poster's order, and the membership ends as each connection's own
// operations say.
func TestGroupConcurrentJoinLeavePost(t *testing.T) {
	stableN, churnN, posters, postsEach, ops := 20, 20, 4, 60, 40
	if testing.Short() {
		postsEach = 30
	}
	s := newSite(t, &wsroute.Options{SendQueueSize: 4096})
	groupRoutes(s.r)
	g := s.r.Groups()
	ctx := context.Background()

	stable := make([]*groupClient, stableN)
	for i := range stable {
		stable[i] = dialGroupClient(t, s, fmt.Sprint("stable", i))
		require.Equal(t, "joined stable", stable[i].call(t, `{"action":"join","group":"stable"}`))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	// Posters post numbered frames to "stable" and to "mixed".
	var skipped sync.Map
	for p := range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range postsEach {
				for _, grp := range []string{"stable", "mixed"} {
					res, err := g.PostToGroup(ctx, grp, fmt.Appendf(nil, "%s %d %d", grp, p, seq))
					if err != nil {
						errs <- err
						return
					}
					if res.Skipped > 0 {
						skipped.Store(grp, true)
					}
				}
			}
		}()
	}
	// Churners join and leave "mixed" (and the stable ones "mixed" too),
	// then some of them disconnect.
	final := make(map[string]bool) // id → member of "mixed" at the end
	var finalMu sync.Mutex
	for i := range churnN + stableN {
		var c *groupClient
		if i < stableN {
			c = stable[i]
		} else {
			c = dialGroupClient(t, s, fmt.Sprint("churn", i))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(i), 7))
			in := false
			for range ops {
				var err error
				if rnd.IntN(2) == 0 {
					err = g.Join(ctx, "mixed", c.id)
					in = true
				} else {
					err = g.Leave(ctx, "mixed", c.id)
					in = false
				}
				if err != nil {
					errs <- err
					return
				}
			}
			if i >= stableN && i%2 == 0 {
				c.ws.Close(websocket.StatusNormalClosure, "")
				in = false
			}
			finalMu.Lock()
			final[c.id] = in
			finalMu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	_, sk := skipped.Load("stable")
	require.False(t, sk, "no stable member was skipped")

	// Every stable member got every post to "stable" once, in order; posts
	// to "mixed" in order, without duplicates.
	for _, c := range stable {
		next := make([]int, posters)
		mixed := make([]int, posters)
		for i := range mixed {
			mixed[i] = -1
		}
		for got := 0; got < posters*postsEach; {
			m, err := c.p.next(testTimeout)
			require.NoError(t, err, "%d of %d posts", got, posters*postsEach)
			var grp string
			var p, seq int
			_, err = fmt.Sscanf(m, "%s %d %d", &grp, &p, &seq)
			require.NoError(t, err, m)
			if grp == "mixed" {
				require.Greater(t, seq, mixed[p], "posts of %d to mixed in order", p)
				mixed[p] = seq
				continue
			}
			require.Equal(t, next[p], seq, "posts of %d to stable, once, in order", p)
			next[p]++
			got++
		}
	}
	// The membership is what each connection's last operation made it,
	// once the closed ones' $disconnect has run.
	var want []string
	for id, in := range final {
		if in {
			want = append(want, id)
		}
	}
	slices.Sort(want)
	waitUntil(t, testTimeout, func() bool { return slices.Equal(want, members(t, s.r, "mixed")) }, func() string {
		return fmt.Sprintf("members of mixed %v, want %v", members(t, s.r, "mixed"), want)
	})
	assert.Len(t, members(t, s.r, "stable"), stableN)
}
