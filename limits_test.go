package wsroute_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// fillUntilFull posts chunks to id until the send queue is full. Every post
// must return promptly. It fails the test if the queue never fills.
func fillUntilFull(t *testing.T, cm wsroute.ConnectionManager, id string) {
	t.Helper()
	chunk := []byte(strings.Repeat("z", 64<<10))
	for i := range 2000 { // 128 MB: far more than any socket buffer
		start := time.Now()
		err := cm.PostToConnection(context.Background(), id, chunk)
		took := time.Since(start)
		require.Less(t, took, 500*time.Millisecond, "PostToConnection blocked on a client that does not read")
		if errors.Is(err, wsroute.ErrLimitExceeded) {
			t.Logf("send queue full after %d posts of 64 KiB", i)
			return
		}
		require.NoError(t, err)
	}
	t.Fatal("the send queue never filled")
}

// TestClientThatNeverReads: a client that stops reading fills its socket
// buffers and then its send queue; posts to it fail fast with
// ErrLimitExceeded, other connections are not delayed, and the keepalive
// ends it with 1006.
func TestClientThatNeverReads(t *testing.T) {
	const ping, pong = 500 * time.Millisecond, 300 * time.Millisecond
	s := newSite(t, &wsroute.Options{SendQueueSize: 4, PingInterval: ping, PongTimeout: pong})
	cm := s.r.Connections()
	ok, okID := dialNamed(t, s, "ok", dialOpts{})
	okMsgs := startPump(ok.ws)
	_, stuckID := dialNamed(t, s, "stuck", dialOpts{readBuf: 4096}) // and never read
	opened := time.Now()

	fillUntilFull(t, cm, stuckID)
	chunk := []byte(strings.Repeat("y", 64<<10))
	for i := range 20 {
		// The kernel may still take a little now and then (the socket's
		// send buffer grows), so a post may yet succeed; none may block.
		start := time.Now()
		err := cm.PostToConnection(context.Background(), stuckID, chunk)
		require.Less(t, time.Since(start), 500*time.Millisecond)
		if !errors.Is(err, wsroute.ErrLimitExceeded) {
			require.NoError(t, err)
		}

		// Meanwhile the other connection is served in time.
		m := fmt.Sprintf("to ok %d", i)
		require.NoError(t, cm.PostToConnection(context.Background(), okID, []byte(m)))
		got, err := okMsgs.next(2 * time.Second)
		require.NoError(t, err)
		require.Equal(t, m, got)
	}

	// The keepalive notices that the stuck client does not answer.
	ev, err := s.log.waitDisconnect(stuckID, testTimeout)
	require.NoError(t, err)
	assert.Equal(t, 1006, ev.RequestContext.DisconnectStatusCode)
	assert.Equal(t, "", ev.RequestContext.DisconnectReason)
	assert.GreaterOrEqual(t, time.Since(opened), ping, "closed before the first ping was due")
	assert.ErrorIs(t, cm.PostToConnection(context.Background(), stuckID, []byte("x")), wsroute.ErrGone)

	// The client that reads answers the pings and stays.
	_, err = cm.GetConnection(context.Background(), okID)
	require.NoError(t, err)
	assert.Empty(t, s.log.disconnects(okID))
	require.NoError(t, ok.ws.Close(websocket.StatusNormalClosure, ""))
	s.ln.requireAllClosed(t, testTimeout)
}

// TestDeleteStuckClient: DeleteConnection on a client that does not read
// returns at once; the close completes when CloseTimeout runs out.
func TestDeleteStuckClient(t *testing.T) {
	const closeTimeout = time.Second
	s := newSite(t, &wsroute.Options{SendQueueSize: 4, PingInterval: -1, CloseTimeout: closeTimeout})
	cm := s.r.Connections()
	_, id := dialNamed(t, s, "stuck", dialOpts{readBuf: 4096})
	fillUntilFull(t, cm, id)

	start := time.Now()
	require.NoError(t, cm.DeleteConnection(context.Background(), id))
	assert.Less(t, time.Since(start), 200*time.Millisecond, "DeleteConnection waited on the client")
	assert.ErrorIs(t, cm.PostToConnection(context.Background(), id, []byte("x")), wsroute.ErrGone)

	ev, err := s.log.waitDisconnect(id, closeTimeout+testTimeout)
	require.NoError(t, err)
	took := time.Since(start)
	assert.Equal(t, 1000, ev.RequestContext.DisconnectStatusCode)
	assert.Equal(t, "Connection Closed Normally", ev.RequestContext.DisconnectReason)
	assert.GreaterOrEqual(t, took, closeTimeout-50*time.Millisecond, "closed before CloseTimeout although the client never answered")
	assert.Less(t, took, closeTimeout+3*time.Second)
	s.ln.requireAllClosed(t, testTimeout)
}

func TestKeepalive(t *testing.T) {
	const ping, pong = 100 * time.Millisecond, 300 * time.Millisecond
	s := newSite(t, &wsroute.Options{PingInterval: ping, PongTimeout: pong, IdleTimeout: time.Hour})
	cm := s.r.Connections()

	t.Run("a client that answers stays", func(t *testing.T) {
		var pings atomic.Int32
		c, id := dialNamed(t, s, "answers", dialOpts{onPing: func() { pings.Add(1) }})
		p := startPump(c.ws)
		waitUntil(t, testTimeout, func() bool { return pings.Load() >= 6 }, func() string {
			return fmt.Sprintf("only %d pings", pings.Load())
		})
		_, err := cm.GetConnection(context.Background(), id)
		require.NoError(t, err, "closed after %d answered pings", pings.Load())
		assert.Empty(t, s.log.disconnects(id))
		send(t, c.ws, `{"action":"echo"}`)
		got, err := p.next(testTimeout)
		require.NoError(t, err)
		assert.Equal(t, `{"action":"echo"}`, got)
	})

	t.Run("a client that stops reading is closed", func(t *testing.T) {
		c, id := dialNamed(t, s, "silent", dialOpts{})
		opened := time.Now()
		ev, err := s.log.waitDisconnect(id, testTimeout)
		require.NoError(t, err)
		took := time.Since(opened)
		assert.Equal(t, 1006, ev.RequestContext.DisconnectStatusCode)
		assert.Equal(t, "", ev.RequestContext.DisconnectReason)
		assert.GreaterOrEqual(t, took, ping)
		assert.Less(t, took, ping+pong+3*time.Second)
		// No close frame: the socket was dropped.
		_, _, err = readMsg(c.ws, testTimeout)
		require.Error(t, err)
		assert.Equal(t, websocket.StatusCode(-1), websocket.CloseStatus(err), "got %v", err)
	})
	s.ln.requireAllClosed(t, testTimeout)
}

// TestSlowHandlerAndKeepalive: while a handler runs, its connection's read
// loop does not read, so pongs wait unread. A healthy client must not be
// taken for a dead one because its handler is slower than PongTimeout.
func TestSlowHandlerAndKeepalive(t *testing.T) {
	const ping, pong = 100 * time.Millisecond, 200 * time.Millisecond
	s := newSite(t, &wsroute.Options{PingInterval: ping, PongTimeout: pong})
	s.r.HandleFunc("slow", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		time.Sleep(4 * (ping + pong))
		return &wsroute.Response{StatusCode: 200, Body: "done"}, nil
	})
	c, id := dialNamed(t, s, "a", dialOpts{})
	p := startPump(c.ws)
	send(t, c.ws, `{"action":"slow"}`)
	got, err := p.next(testTimeout)
	require.NoError(t, err)
	assert.Equal(t, "done", got)
	assert.Empty(t, s.log.disconnects(id))
	send(t, c.ws, `{"action":"echo"}`)
	got, err = p.next(testTimeout)
	require.NoError(t, err)
	assert.Equal(t, `{"action":"echo"}`, got)
}

// TestReplyToDroppedClient: a two-way route's answer is written on the read
// loop; when that write fails the connection still ends with one
// $disconnect and its socket is closed.
func TestReplyToDroppedClient(t *testing.T) {
	s := newSite(t, nil)
	entered := make(chan struct{})
	release := make(chan struct{})
	s.r.HandleFunc("late", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		close(entered)
		select {
		case <-release:
		case <-time.After(testTimeout):
		}
		return &wsroute.Response{StatusCode: 200, Body: strings.Repeat("answer ", 1000)}, nil
	})
	c, id := dialNamed(t, s, "a", dialOpts{})
	send(t, c.ws, `{"action":"late"}`)
	<-entered
	require.NoError(t, c.reset())
	// Let the reset reach the server before the handler answers, so that
	// the answer's write is what fails. (Were it late, the read loop would
	// see the reset instead: the outcome checked below is the same.)
	time.Sleep(50 * time.Millisecond)
	close(release)
	s.log.requireDisconnect(t, id, 1006, "")
	s.ln.requireAllClosed(t, testTimeout)
}

func TestMessageSizeLimit(t *testing.T) {
	const limit = 1000
	s := newSite(t, &wsroute.Options{MaxMessageSize: limit})
	other, _ := dialNamed(t, s, "other", dialOpts{})
	c, id := dialNamed(t, s, "a", dialOpts{})
	atLimit := `{"action":"echo","pad":"` + strings.Repeat("p", limit-len(`{"action":"echo","pad":""}`)) + `"}`
	require.Len(t, atLimit, limit)
	send(t, c.ws, atLimit)
	assert.Equal(t, atLimit, read(t, c.ws), "a message of exactly MaxMessageSize is fine")

	send(t, c.ws, atLimit+" ")
	// Refused on the frame's header, with the reason $disconnect gets.
	assert.Equal(t, websocket.CloseError{Code: websocket.StatusMessageTooBig, Reason: "Message too big"}, readClose(t, c.ws))
	s.log.requireDisconnect(t, id, 1009, "Message too big")

	send(t, other.ws, `{"action":"echo"}`)
	assert.Equal(t, `{"action":"echo"}`, read(t, other.ws), "other connections are untouched")
	require.NoError(t, other.ws.Close(websocket.StatusNormalClosure, ""))
	s.ln.requireAllClosed(t, testTimeout)
}

func TestRefusedFrames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		typ    websocket.MessageType
		data   []byte
		code   websocket.StatusCode
		reason string
	}{
		{"binary", websocket.MessageBinary, []byte(`{"action":"echo"}`), websocket.StatusUnsupportedData, "Binary frames are not supported"},
		{"invalid UTF-8", websocket.MessageText, []byte("{\"action\":\"echo\",\"x\":\"\xc3\x28\"}"), websocket.StatusInvalidFramePayloadData, "Text frame is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, nil)
			other, _ := dialNamed(t, s, "other", dialOpts{})
			c, id := dialNamed(t, s, "a", dialOpts{})
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			require.NoError(t, c.ws.Write(ctx, tc.typ, tc.data))
			require.NoError(t, expectClose(c.ws, testTimeout, tc.code, tc.reason))
			s.log.requireDisconnect(t, id, int(tc.code), tc.reason)
			send(t, other.ws, `{"action":"echo"}`)
			assert.Equal(t, `{"action":"echo"}`, read(t, other.ws), "other connections are untouched")
		})
	}
}

// TestIdleTimeout: traffic either way keeps a connection; pings do not.
func TestIdleTimeout(t *testing.T) {
	const idle = 600 * time.Millisecond
	s := newSite(t, &wsroute.Options{IdleTimeout: idle, PingInterval: 100 * time.Millisecond})
	cm := s.r.Connections()
	sender, senderID := dialNamed(t, s, "sender", dialOpts{})
	senderMsgs := startPump(sender.ws)
	receiver, receiverID := dialNamed(t, s, "receiver", dialOpts{})
	receiverMsgs := startPump(receiver.ws)
	var pings atomic.Int32
	quiet, quietID := dialNamed(t, s, "quiet", dialOpts{onPing: func() { pings.Add(1) }})
	quietMsgs := startPump(quiet.ws)
	opened := time.Now()

	for i := 0; time.Since(opened) < 3*idle; i++ {
		send(t, sender.ws, `{"action":"quiet"}`) // no route, no $default: a Forbidden frame comes back
		_, err := senderMsgs.next(testTimeout)
		require.NoError(t, err)
		require.NoError(t, cm.PostToConnection(context.Background(), receiverID, []byte("tick")))
		_, err = receiverMsgs.next(testTimeout)
		require.NoError(t, err)
		time.Sleep(idle / 6)
	}
	require.Empty(t, s.log.disconnects(senderID), "inbound messages did not keep the connection")
	require.Empty(t, s.log.disconnects(receiverID), "outbound messages did not keep the connection")

	ev := s.log.requireDisconnect(t, quietID, 1001, "Going away")
	assert.GreaterOrEqual(t, time.UnixMilli(ev.RequestContext.RequestTimeEpoch).Sub(opened), idle-50*time.Millisecond)
	assert.GreaterOrEqual(t, pings.Load(), int32(2), "the quiet client answered pings, which do not count")
	var ce websocket.CloseError
	require.ErrorAs(t, quietMsgs.end(testTimeout), &ce)
	assert.Equal(t, websocket.CloseError{Code: websocket.StatusGoingAway, Reason: "Going away"}, ce)
}

func TestMaxConnectionDuration(t *testing.T) {
	const maxDuration = 500 * time.Millisecond
	s := newSite(t, &wsroute.Options{MaxConnectionDuration: maxDuration, IdleTimeout: time.Hour})
	c, id := dialNamed(t, s, "a", dialOpts{})
	p := startPump(c.ws)
	info, err := s.r.Connections().GetConnection(context.Background(), id)
	require.NoError(t, err)
	// However active the client, it is closed when its time is up.
	for range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		err := c.ws.Write(ctx, websocket.MessageText, []byte(`{"action":"echo"}`))
		cancel()
		if err != nil {
			break
		}
		if _, err := p.next(testTimeout); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ce websocket.CloseError
	require.ErrorAs(t, p.end(testTimeout), &ce)
	assert.Equal(t, websocket.CloseError{Code: websocket.StatusGoingAway, Reason: "Going away"}, ce)
	ev := s.log.requireDisconnect(t, id, 1001, "Going away")
	lived := time.UnixMilli(ev.RequestContext.RequestTimeEpoch).Sub(info.ConnectedAt)
	assert.GreaterOrEqual(t, lived, maxDuration)
	assert.Less(t, lived, maxDuration+3*time.Second)
}

// TestClientThatSendsButNeverReads: a client that keeps handlers busy but
// never reads escapes the ping (a ping that fails while a handler ran gives
// no verdict); the write stuck on its full socket gives it away.
func TestClientThatSendsButNeverReads(t *testing.T) {
	const ping, pong = 200 * time.Millisecond, 300 * time.Millisecond
	s := newSite(t, &wsroute.Options{SendQueueSize: 4, PingInterval: ping, PongTimeout: pong})
	s.r.HandleFunc("busy", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		time.Sleep(40 * time.Millisecond)
		return nil, nil
	})
	cm := s.r.Connections()
	c, id := dialNamed(t, s, "stuck", dialOpts{readBuf: 4096}) // and never read

	// Keep a handler running at all times, for at most testTimeout.
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		deadline := time.Now().Add(testTimeout)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := c.ws.Write(ctx, websocket.MessageText, []byte(`{"action":"busy"}`))
			cancel()
			if err != nil {
				return // the router closed the socket
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { close(stop); <-sent }()
	time.Sleep(100 * time.Millisecond)

	// Post until the queue stays full for half a second, or the router gives
	// up on the client: the kernel's buffers fill and the writer gets stuck.
	chunk := []byte(strings.Repeat("z", 64<<10))
	for full, i := 0, 0; full < 100 && i < 4000; i++ {
		err := cm.PostToConnection(context.Background(), id, chunk)
		if errors.Is(err, wsroute.ErrGone) {
			break
		}
		if errors.Is(err, wsroute.ErrLimitExceeded) {
			full++
			time.Sleep(5 * time.Millisecond)
			continue
		}
		require.NoError(t, err)
		full = 0
	}
	ev, err := s.log.waitDisconnect(id, testTimeout)
	require.NoError(t, err, "a client that sends but never reads was never closed")
	assert.Equal(t, 1006, ev.RequestContext.DisconnectStatusCode)
	s.ln.requireAllClosed(t, testTimeout)
}
