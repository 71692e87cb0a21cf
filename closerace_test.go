package wsroute_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// raceTries runs try(i) for i in [0, n) on a few goroutines, for at most
// budget, and returns the failures and how many tries ran.
func raceTries(n, parallel int, budget time.Duration, try func(i int) error) (fails []error, ran int) {
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	stop := time.Now().Add(budget)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				err := try(i)
				mu.Lock()
				ran++
				if err != nil {
					fails = append(fails, fmt.Errorf("try %d: %w", i, err))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return fails, ran
}

// TestCloseCodeWinsOverRacingPosts: a client closes with 1000 "bye", or
// sends an oversize message, while PostToConnection writes to it in a loop.
// The write that fails because the socket is closing must not turn the
// close into a 1006 drop: $disconnect reports the client's close, or 1009.
func TestCloseCodeWinsOverRacingPosts(t *testing.T) {
	const maxMessage = 1024
	s := newSite(t, &wsroute.Options{MaxMessageSize: maxMessage})
	cm := s.r.Connections()
	chunk := []byte(strings.Repeat("p", 2048))
	try := func(i int) error {
		name := fmt.Sprint("race", i)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c, err := dialClient(ctx, s.url(name), dialOpts{})
		if err != nil {
			return err
		}
		defer c.ws.CloseNow()
		id := s.log.id(name)
		// Post until the connection is gone, for at most testTimeout.
		posting := make(chan struct{})
		postsDone := make(chan struct{})
		go func() {
			defer close(postsDone)
			deadline := time.Now().Add(testTimeout)
			for n := 0; time.Now().Before(deadline) && n < 100000; n++ {
				err := cm.PostToConnection(context.Background(), id, chunk)
				if n == 0 {
					close(posting)
				}
				if errors.Is(err, wsroute.ErrGone) {
					return
				}
			}
		}()
		<-posting
		want := []any{1000, "bye"}
		if i%2 == 0 {
			if err := c.ws.Close(websocket.StatusNormalClosure, "bye"); err != nil && !strings.Contains(err.Error(), "closed") {
				return err
			}
		} else {
			want = []any{1009, "Message too big"}
			if err := c.ws.Write(ctx, websocket.MessageText, []byte(strings.Repeat("x", maxMessage+1))); err != nil {
				return err
			}
			if _, err := closeStatus(c.ws, testTimeout); err != nil {
				return err
			}
		}
		ev, err := s.log.waitDisconnect(id, testTimeout)
		<-postsDone
		if err != nil {
			return err
		}
		got := []any{ev.RequestContext.DisconnectStatusCode, ev.RequestContext.DisconnectReason}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("$disconnect %v, want %v", got, want)
		}
		return nil
	}
	fails, ran := raceTries(400, 4, 90*time.Second, try)
	t.Logf("%d tries, %d failed", ran, len(fails))
	for _, err := range fails[:min(len(fails), 5)] {
		t.Error(err)
	}
	require.Zero(t, len(fails), "tries that failed")
	require.GreaterOrEqual(t, ran, 300, "too few tries ran within the time budget to catch a 2%% race")
}

// TestReplyBeforeCloseResponse: a client writes a message and a close frame
// in one write. The handler's reply to the message must reach it before the
// close response, also when the reply has to wait behind other frames (posts
// under way, or the writer that starts with the connection).
func TestReplyBeforeCloseResponse(t *testing.T) {
	s := newSite(t, &wsroute.Options{MaxPostSize: 256 << 10})
	big := []byte(strings.Repeat("b", 200<<10))
	s.r.HandleFunc("busy", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		// Keep the writer busy: the reply queues behind these.
		cm := wsroute.ConnectionsFromContext(ctx)
		for range 3 {
			if err := cm.PostToConnection(ctx, req.RequestContext.ConnectionID, big); err != nil {
				return nil, err
			}
		}
		return &wsroute.Response{StatusCode: 200, Body: "reply"}, nil
	})
	try := func(i int) error {
		addr, path := s.hostPath(fmt.Sprint("reply", i))
		msg, posts := `{"action":"echo","n":"reply"}`, 0
		if i%2 == 1 {
			msg, posts = `{"action":"busy"}`, 3
		}
		// Even tries send the message and the close with the handshake:
		// the reply races the writer that the connection starts with.
		var early []byte
		frames := append(textFrame(msg), closeFrame(1000, "bye")...)
		if i%2 == 0 {
			early = frames
		}
		c, err := dialRaw(addr, path, early, testTimeout)
		if err != nil {
			return err
		}
		defer c.Close()
		if early == nil {
			if err := c.write(frames); err != nil {
				return err
			}
		}
		before, code, reason, err := c.readUntilClose(testTimeout)
		if err != nil {
			return err
		}
		if len(before) != posts+1 {
			return fmt.Errorf("got %d frames before the close %d %q, want %d posts and the reply: %v", len(before), code, reason, posts, before)
		}
		want := msg
		if posts > 0 {
			want = "reply"
		}
		if last := before[len(before)-1]; string(last.payload) != want {
			return fmt.Errorf("last frame before the close is %v, want %q", last, want)
		}
		if code != 1000 || reason != "bye" {
			return fmt.Errorf("close response %d %q, want 1000 \"bye\"", code, reason)
		}
		return nil
	}
	fails, ran := raceTries(400, 4, 90*time.Second, try)
	t.Logf("%d tries, %d failed", ran, len(fails))
	for _, err := range fails[:min(len(fails), 5)] {
		t.Error(err)
	}
	require.Zero(t, len(fails), "tries that failed")
	require.GreaterOrEqual(t, ran, 300, "too few tries ran within the time budget to catch a 2%% race")
}
