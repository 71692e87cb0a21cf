package wsroute_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// dialNamed dials s as the client called name and returns it with the
// connection ID that $connect saw.
func dialNamed(t testing.TB, s *site, name string, o dialOpts) (*client, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := dialClient(ctx, s.url(name), o)
	require.NoError(t, err)
	t.Cleanup(func() { c.ws.CloseNow() })
	id := s.log.id(name)
	require.NotEmpty(t, id, "$connect did not record %s", name)
	return c, id
}

// internalError is the frame a client gets when its handler fails.
func internalError(connID, requestID string) string {
	return `{"message": "Internal server error", "connectionId":"` + connID + `", "requestId":"` + requestID + `"}`
}

func TestGetConnection(t *testing.T) {
	s := newSite(t, nil)
	handled := make(chan struct{}, 1)
	s.r.HandleFunc("quiet", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		handled <- struct{}{}
		return nil, nil
	})
	cm := s.r.Connections()
	ctx := context.Background()

	before := time.Now().Truncate(time.Millisecond)
	c, id := dialNamed(t, s, "a", dialOpts{header: http.Header{"User-Agent": {"wsroute-lifecycle-test/1.0"}}})
	after := time.Now()

	info, err := cm.GetConnection(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, id, info.ConnectionID)
	assert.Equal(t, wsroute.Identity{SourceIP: "127.0.0.1", UserAgent: "wsroute-lifecycle-test/1.0"}, info.Identity)
	assert.False(t, info.ConnectedAt.Before(before), "connectedAt %v before the dial began at %v", info.ConnectedAt, before)
	assert.False(t, info.ConnectedAt.After(after))
	assert.False(t, info.LastActiveAt.Before(info.ConnectedAt), "before any message, lastActiveAt is when the connection was accepted")
	assert.False(t, info.LastActiveAt.After(after))
	connectedAt := info.ConnectedAt

	// An inbound message moves lastActiveAt. Wait out the millisecond first.
	time.Sleep(5 * time.Millisecond)
	t1 := time.Now().Truncate(time.Millisecond)
	send(t, c.ws, `{"action":"quiet"}`)
	select {
	case <-handled:
	case <-time.After(testTimeout):
		t.Fatal("the quiet route did not run")
	}
	info, err = cm.GetConnection(ctx, id)
	require.NoError(t, err)
	assert.False(t, info.LastActiveAt.Before(t1), "lastActiveAt %v did not move to the inbound message at %v", info.LastActiveAt, t1)
	assert.Equal(t, connectedAt, info.ConnectedAt)

	// So does an outbound one. The client can read it before the router
	// notes the write, so poll.
	time.Sleep(5 * time.Millisecond)
	t2 := time.Now().Truncate(time.Millisecond)
	require.NoError(t, cm.PostToConnection(ctx, id, []byte("pushed")))
	assert.Equal(t, "pushed", read(t, c.ws))
	waitUntil(t, testTimeout, func() bool {
		info, err = cm.GetConnection(ctx, id)
		return err == nil && !info.LastActiveAt.Before(t2)
	}, func() string {
		return fmt.Sprintf("lastActiveAt %v did not move to the outbound message at %v (err %v)", info.LastActiveAt, t2, err)
	})
	assert.Equal(t, connectedAt, info.ConnectedAt)

	// After the close every call is ErrGone.
	require.NoError(t, c.ws.Close(websocket.StatusNormalClosure, ""))
	s.log.requireDisconnect(t, id, 1000, "")
	_, err = cm.GetConnection(ctx, id)
	assert.ErrorIs(t, err, wsroute.ErrGone)
	assert.ErrorIs(t, cm.PostToConnection(ctx, id, []byte("late")), wsroute.ErrGone)
	assert.ErrorIs(t, cm.DeleteConnection(ctx, id), wsroute.ErrGone)
}

func TestUnknownConnectionIsGone(t *testing.T) {
	s := newSite(t, nil)
	_, id := dialNamed(t, s, "a", dialOpts{})
	cm := s.r.Connections()
	ctx := context.Background()
	for _, unknown := range []string{"", "x", "AAAAAAAAAAAAAAA=", id + "x", id[:15], "../" + id, "%00"} {
		_, err := cm.GetConnection(ctx, unknown)
		assert.ErrorIs(t, err, wsroute.ErrGone, "GetConnection(%q)", unknown)
		assert.ErrorIs(t, cm.PostToConnection(ctx, unknown, []byte("x")), wsroute.ErrGone, "PostToConnection(%q)", unknown)
		assert.ErrorIs(t, cm.DeleteConnection(ctx, unknown), wsroute.ErrGone, "DeleteConnection(%q)", unknown)
	}
	_, err := cm.GetConnection(ctx, id)
	assert.NoError(t, err, "the real connection is untouched")
}

func TestConnectionIsGoneDuringConnect(t *testing.T) {
	r := newRouter(t, nil)
	type result struct {
		post, get, del error
		info           *wsroute.Connection
	}
	results := make(chan result, 1)
	r.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		cm := wsroute.ConnectionsFromContext(ctx)
		id := req.RequestContext.ConnectionID
		var res result
		res.post = cm.PostToConnection(ctx, id, []byte("too early"))
		res.info, res.get = cm.GetConnection(ctx, id)
		res.del = cm.DeleteConnection(ctx, id)
		results <- res
		return nil, nil
	})
	r.HandleFunc("echo", echo)
	c := dial(t, serve(t, r), nil)
	res := <-results
	assert.ErrorIs(t, res.post, wsroute.ErrGone)
	assert.ErrorIs(t, res.get, wsroute.ErrGone)
	assert.Nil(t, res.info)
	assert.ErrorIs(t, res.del, wsroute.ErrGone)
	// The failed DeleteConnection did not close the connection.
	send(t, c, `{"action":"echo"}`)
	assert.Equal(t, `{"action":"echo"}`, read(t, c))
}

func TestConnectionIsGoneWhileClosing(t *testing.T) {
	s := newSite(t, &wsroute.Options{CloseTimeout: time.Second})
	c, id := dialNamed(t, s, "a", dialOpts{})
	cm := s.r.Connections()
	ctx := context.Background()
	// Frames queued before DeleteConnection are written before the close frame.
	for i := range 3 {
		require.NoError(t, cm.PostToConnection(ctx, id, []byte(strconv.Itoa(i))))
	}
	require.NoError(t, cm.DeleteConnection(ctx, id))
	// The client has not answered the close yet: the connection is closing.
	_, err := cm.GetConnection(ctx, id)
	assert.ErrorIs(t, err, wsroute.ErrGone)
	assert.ErrorIs(t, cm.PostToConnection(ctx, id, []byte("late")), wsroute.ErrGone)
	assert.ErrorIs(t, cm.DeleteConnection(ctx, id), wsroute.ErrGone, "a second DeleteConnection")
	for i := range 3 {
		assert.Equal(t, strconv.Itoa(i), read(t, c.ws))
	}
	require.NoError(t, expectClose(c.ws, testTimeout, websocket.StatusNormalClosure, "Connection Closed Normally"))
	s.log.requireDisconnect(t, id, 1000, "Connection Closed Normally")
}

func TestPostToConnectionSizeLimit(t *testing.T) {
	s := newSite(t, &wsroute.Options{MaxPostSize: 100})
	c, id := dialNamed(t, s, "a", dialOpts{})
	cm := s.r.Connections()
	ctx := context.Background()
	big := make([]byte, 101)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	assert.ErrorIs(t, cm.PostToConnection(ctx, id, big), wsroute.ErrPayloadTooLarge)
	require.NoError(t, cm.PostToConnection(ctx, id, big[:100]))
	assert.Equal(t, string(big[:100]), read(t, c.ws), "the refused post sent nothing")
	_, err := cm.GetConnection(ctx, id)
	assert.NoError(t, err, "the connection stays open")
}

func TestHandlerFailureFrame(t *testing.T) {
	s := newSite(t, nil)
	requestIDs := make(chan string, 1)
	s.r.HandleFunc("panic", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		requestIDs <- req.RequestContext.RequestID
		panic("boom")
	})
	s.r.HandleFunc("fail", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		requestIDs <- req.RequestContext.RequestID
		return &wsroute.Response{StatusCode: 200, Body: "not sent"}, errors.New("integration failed")
	})
	s.r.HandleFunc("badbase64", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		requestIDs <- req.RequestContext.RequestID
		return &wsroute.Response{StatusCode: 200, Body: "%%%", IsBase64Encoded: true}, nil
	})
	c, id := dialNamed(t, s, "a", dialOpts{})
	for range 3 {
		for _, route := range []string{"panic", "fail", "badbase64"} {
			send(t, c.ws, `{"action":"`+route+`"}`)
			rid := <-requestIDs
			assert.Regexp(t, idPattern, rid)
			assert.Equal(t, internalError(id, rid), read(t, c.ws), route)
			// The connection stays open and keeps working.
			send(t, c.ws, `{"action":"echo","after":"`+route+`"}`)
			assert.Equal(t, `{"action":"echo","after":"`+route+`"}`, read(t, c.ws))
		}
	}
	_, err := s.r.Connections().GetConnection(context.Background(), id)
	assert.NoError(t, err)
	assert.Empty(t, s.log.disconnects(id))
}

func TestMessagesAreHandledInOrder(t *testing.T) {
	n := 200
	s := newSite(t, nil)
	s.r.HandleFunc("seq", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond)
		return &wsroute.Response{StatusCode: 200, Body: req.Body}, nil
	})
	c, _ := dialNamed(t, s, "a", dialOpts{})
	msg := func(i int) string { return fmt.Sprintf(`{"action":"seq","i":%d}`, i) }
	sent := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		for i := range n {
			if err := c.ws.Write(ctx, websocket.MessageText, []byte(msg(i))); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for i := range n {
		got, err := readTextMsg(c.ws, testTimeout)
		require.NoError(t, err)
		require.Equal(t, msg(i), got)
	}
	require.NoError(t, <-sent)
}

func TestSlowHandlerDelaysOnlyItsConnection(t *testing.T) {
	s := newSite(t, nil)
	entered := make(chan struct{})
	release := make(chan struct{})
	s.r.HandleFunc("block", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		close(entered)
		select {
		case <-release:
		case <-time.After(testTimeout):
		}
		return &wsroute.Response{StatusCode: 200, Body: "unblocked"}, nil
	})
	slow, _ := dialNamed(t, s, "slow", dialOpts{})
	fast, _ := dialNamed(t, s, "fast", dialOpts{})
	send(t, slow.ws, `{"action":"block"}`)
	send(t, slow.ws, `{"action":"echo","n":"queued behind the slow one"}`)
	<-entered
	for i := range 20 {
		start := time.Now()
		m := fmt.Sprintf(`{"action":"echo","n":%d}`, i)
		send(t, fast.ws, m)
		got, err := readTextMsg(fast.ws, 2*time.Second)
		require.NoError(t, err, "another connection's echo waited for the slow handler")
		require.Equal(t, m, got)
		require.Less(t, time.Since(start), 2*time.Second)
	}
	close(release)
	assert.Equal(t, "unblocked", read(t, slow.ws))
	assert.Equal(t, `{"action":"echo","n":"queued behind the slow one"}`, read(t, slow.ws))
}

func TestAcceptBinary(t *testing.T) {
	s := newSite(t, &wsroute.Options{AcceptBinary: true})
	events := make(chan *wsroute.Request, 4)
	s.r.HandleFunc(wsroute.RouteDefault, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		events <- req
		if !req.IsBase64Encoded {
			return nil, nil
		}
		in, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return nil, err
		}
		// Answer with the bytes reversed, as binary.
		out := make([]byte, len(in))
		for i, b := range in {
			out[len(in)-1-i] = b
		}
		return &wsroute.Response{StatusCode: 200, Body: base64.StdEncoding.EncodeToString(out), IsBase64Encoded: true}, nil
	})
	c, id := dialNamed(t, s, "a", dialOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	payload := []byte{0x00, 0xff, 0xfe, 'h', 'i', 0x80}
	require.NoError(t, c.ws.Write(ctx, websocket.MessageBinary, payload))
	ev := <-events
	assert.Equal(t, wsroute.RouteDefault, ev.RequestContext.RouteKey)
	assert.Equal(t, wsroute.EventMessage, ev.RequestContext.EventType)
	assert.True(t, ev.IsBase64Encoded)
	assert.Equal(t, base64.StdEncoding.EncodeToString(payload), ev.Body)
	typ, got, err := c.ws.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, websocket.MessageBinary, typ)
	assert.Equal(t, []byte{0x80, 'i', 'h', 0xfe, 0xff, 0x00}, got)

	// A binary frame that holds JSON with a route is still $default.
	require.NoError(t, c.ws.Write(ctx, websocket.MessageBinary, []byte(`{"action":"echo"}`)))
	ev = <-events
	assert.Equal(t, wsroute.RouteDefault, ev.RequestContext.RouteKey)
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte(`{"action":"echo"}`)), ev.Body)
	typ, got, err = c.ws.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, websocket.MessageBinary, typ)
	assert.Equal(t, `}"ohce":"noitca"{`, string(got))

	// Text that is not JSON: $default, not base64.
	send(t, c.ws, "plain text")
	ev = <-events
	assert.False(t, ev.IsBase64Encoded)
	assert.Equal(t, "plain text", ev.Body)

	// PostToConnection: valid UTF-8 goes as text, anything else as binary.
	cm := s.r.Connections()
	require.NoError(t, cm.PostToConnection(ctx, id, []byte("héllo")))
	require.NoError(t, cm.PostToConnection(ctx, id, []byte{'h', 0xe9, 'l'}))
	require.NoError(t, cm.PostToConnection(ctx, id, []byte{}))
	typ, got, err = c.ws.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, websocket.MessageText, typ)
	assert.Equal(t, "héllo", string(got))
	typ, got, err = c.ws.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, websocket.MessageBinary, typ)
	assert.Equal(t, []byte{'h', 0xe9, 'l'}, got)
	typ, got, err = c.ws.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, websocket.MessageText, typ)
	assert.Empty(t, got)
}

// TestBinaryPostWithoutAcceptBinary: the send direction does not depend on
// AcceptBinary.
func TestBinaryPostWithoutAcceptBinary(t *testing.T) {
	s := newSite(t, nil)
	c, id := dialNamed(t, s, "a", dialOpts{})
	require.NoError(t, s.r.Connections().PostToConnection(context.Background(), id, []byte{0xff}))
	typ, got, err := readMsg(c.ws, testTimeout)
	require.NoError(t, err)
	assert.Equal(t, websocket.MessageBinary, typ)
	assert.Equal(t, "\xff", got)
}

func TestShutdown(t *testing.T) {
	const n = 20
	s := newSite(t, nil)
	closed := make([]chan error, n)
	ids := make([]string, n)
	for i := range n {
		var c *client
		c, ids[i] = dialNamed(t, s, fmt.Sprint(i), dialOpts{})
		// Learning the ID proves the connection is registered.
		got, err := askID(c.ws, testTimeout)
		require.NoError(t, err)
		require.Equal(t, ids[i], got)
		closed[i] = make(chan error, 1)
		go func() { closed[i] <- expectClose(c.ws, testTimeout, websocket.StatusGoingAway, "Going away") }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, s.r.Shutdown(ctx))
	// Every $disconnect has run when Shutdown returns: no waiting here.
	for _, id := range ids {
		evs := s.log.disconnects(id)
		require.Len(t, evs, 1, id)
		assert.Equal(t, 1001, evs[0].RequestContext.DisconnectStatusCode)
		assert.Equal(t, "Going away", evs[0].RequestContext.DisconnectReason)
	}
	open, total := s.ln.open()
	assert.Zero(t, open, "server sockets left open by Shutdown, of %d", total)
	for i := range n {
		assert.NoError(t, <-closed[i], "client %d", i)
	}

	_, resp, err := websocket.Dial(ctx, wsURL(s.srv), nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "an upgrade after Shutdown")

	assert.ErrorIs(t, s.r.Shutdown(ctx), wsroute.ErrRouterClosed)
	assert.Empty(t, s.log.checkExactlyOnce())
}

// TestShutdownRightAfterDial: the client's Dial returns when it has read the
// 101 response, which can be before the router has registered the
// connection. Shutdown must still close it.
func TestShutdownRightAfterDial(t *testing.T) {
	for range 10 {
		s := newSite(t, nil)
		c, id := dialNamed(t, s, "a", dialOpts{})
		done := make(chan error, 1)
		go func() { done <- expectClose(c.ws, testTimeout, websocket.StatusGoingAway, "Going away") }()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.r.Shutdown(ctx)
		cancel()
		require.NoError(t, err)
		require.NoError(t, <-done)
		s.log.requireDisconnect(t, id, 1001, "Going away")
	}
}

// TestShutdownDuringHandshake: a connection whose $connect is still running
// when Shutdown begins is accepted and then closed with 1001, and Shutdown
// waits for its $disconnect.
func TestShutdownDuringHandshake(t *testing.T) {
	r := newRouter(t, nil)
	entered := make(chan string, 1)
	release := make(chan struct{})
	log := newLifeLog()
	r.HandleFunc(wsroute.RouteConnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		if req.QueryStringParameters["slow"] != "" {
			entered <- req.RequestContext.ConnectionID
			select {
			case <-release:
			case <-time.After(testTimeout):
			}
		}
		return nil, nil
	})
	r.HandleFunc(wsroute.RouteDisconnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		log.mu.Lock()
		log.disconnected[req.RequestContext.ConnectionID] = append(log.disconnected[req.RequestContext.ConnectionID], req)
		log.notifyLocked()
		log.mu.Unlock()
		return nil, nil
	})
	srv := serve(t, r)

	type dialed struct {
		c   *websocket.Conn
		err error
	}
	dialDone := make(chan dialed, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c, _, err := websocket.Dial(ctx, wsURL(srv)+"?slow=1", nil)
		dialDone <- dialed{c, err}
	}()
	id := <-entered

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		shutdownDone <- r.Shutdown(ctx)
	}()
	// Once new upgrades get 503, Shutdown has begun.
	waitUntil(t, testTimeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, wsURL(srv), nil)
		if err == nil {
			c.CloseNow()
			return false
		}
		if resp != nil {
			resp.Body.Close()
		}
		return resp != nil && resp.StatusCode == http.StatusServiceUnavailable
	}, func() string { return "Shutdown did not begin" })
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned %v while a handshake was in progress", err)
	default:
	}
	close(release)

	d := <-dialDone
	require.NoError(t, d.err, "the handshake that began before Shutdown completes")
	defer d.c.CloseNow()
	require.NoError(t, expectClose(d.c, testTimeout, websocket.StatusGoingAway, "Going away"))
	select {
	case err := <-shutdownDone:
		require.NoError(t, err)
	case <-time.After(testTimeout):
		t.Fatal("Shutdown did not return")
	}
	evs := log.disconnects(id)
	require.Len(t, evs, 1, "Shutdown returned before $disconnect ran")
	assert.Equal(t, 1001, evs[0].RequestContext.DisconnectStatusCode)
	assert.Equal(t, "Going away", evs[0].RequestContext.DisconnectReason)
}

func TestShutdownDeadline(t *testing.T) {
	const n = 3
	r := newRouter(t, nil)
	var entered atomic.Int32
	ctxErrs := make(chan error, n)
	r.HandleFunc(wsroute.RouteDisconnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		entered.Add(1)
		select {
		case <-ctx.Done():
			ctxErrs <- ctx.Err()
		case <-time.After(testTimeout):
			ctxErrs <- errors.New("the handler's ctx was not cancelled")
		}
		return nil, nil
	})
	whoamiRoute(r)
	srv := serve(t, r)
	var wg sync.WaitGroup
	for range n {
		c := dial(t, srv, nil)
		send(t, c, `{"action":"whoami"}`)
		read(t, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The close handshake completes; $disconnect is what blocks.
			assert.NoError(t, expectClose(c, testTimeout, websocket.StatusGoingAway, "Going away"))
		}()
	}
	const deadline = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := r.Shutdown(ctx)
	took := time.Since(start)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, took, deadline)
	assert.Less(t, took, deadline+2*time.Second, "Shutdown did not return promptly at its deadline")
	for range n {
		select {
		case err := <-ctxErrs:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(testTimeout):
			t.Fatal("a $disconnect handler did not return")
		}
	}
	assert.EqualValues(t, n, entered.Load())
	wg.Wait()
	assert.ErrorIs(t, r.Shutdown(context.Background()), wsroute.ErrRouterClosed)
}
