package wsroute_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// TestFrameLengths posts, replies and broadcasts payloads at every boundary
// of a frame header's length forms (7-bit, 16-bit, 64-bit), as text and as
// binary, with and without compression, and checks that a real client reads
// each whole and in order: the router writes data frames itself when
// compression is off, and through the transport when it is on.
func TestFrameLengths(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 70000}
	for _, mode := range []wsroute.CompressionMode{wsroute.CompressionDisabled, wsroute.CompressionNoContextTakeover} {
		t.Run(fmt.Sprintf("compression=%d", mode), func(t *testing.T) {
			r := newRouter(t, &wsroute.Options{Compression: mode, MaxPostSize: 1 << 20, MaxMessageSize: 1 << 20})
			r.HandleFunc("echo", echo)
			whoamiRoute(r)
			srv := serve(t, r)
			c := dial(t, srv, nil)
			c.SetReadLimit(1 << 20)
			send(t, c, `{"action":"whoami"}`)
			id := read(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			expect := func(typ websocket.MessageType, want []byte, how string) {
				t.Helper()
				gotTyp, got, err := c.Read(ctx)
				require.NoError(t, err, how)
				require.Equal(t, typ, gotTyp, how)
				require.True(t, bytes.Equal(want, got), "%s: %d bytes back, want %d", how, len(got), len(want))
			}
			for _, n := range sizes {
				text := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
				bin := append(bytes.Repeat([]byte{0xff}, n), 0x80) // not UTF-8: a binary frame
				require.NoError(t, r.Connections().PostToConnection(ctx, id, text))
				expect(websocket.MessageText, text, fmt.Sprintf("post of %d text bytes", n))
				require.NoError(t, r.Connections().PostToConnection(ctx, id, bin))
				expect(websocket.MessageBinary, bin, fmt.Sprintf("post of %d binary bytes", len(bin)))
				res, err := r.Groups().Broadcast(ctx, text)
				require.NoError(t, err)
				require.Equal(t, 1, res.Delivered)
				expect(websocket.MessageText, text, fmt.Sprintf("broadcast of %d text bytes", n))
				res, err = r.Groups().Broadcast(ctx, bin)
				require.NoError(t, err)
				require.Equal(t, 1, res.Delivered)
				expect(websocket.MessageBinary, bin, fmt.Sprintf("broadcast of %d binary bytes", len(bin)))
				if n > 0 {
					body := fmt.Sprintf(`{"action":"echo","pad":"%s"}`, bytes.Repeat([]byte{'x'}, n))
					send(t, c, body)
					expect(websocket.MessageText, []byte(body), fmt.Sprintf("reply of %d bytes", len(body)))
				}
			}
			require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
		})
	}
}

// TestPingsBetweenWrittenFrames keeps pings going while the router writes
// data frames to the connection from two sides at once (posts and
// broadcasts): the transport's control frames and the router's data frames
// share the socket and must never interleave. The client answers every ping
// as it reads.
func TestPingsBetweenWrittenFrames(t *testing.T) {
	r := newRouter(t, &wsroute.Options{PingInterval: 2 * time.Millisecond})
	whoamiRoute(r)
	srv := serve(t, r)
	c := dial(t, srv, nil)
	send(t, c, `{"action":"whoami"}`)
	id := read(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	const n = 2000
	payload := bytes.Repeat([]byte("p"), 300)
	var sent atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if i%2 == 0 {
				switch err := r.Connections().PostToConnection(ctx, id, payload); {
				case err == nil:
					sent.Add(1)
				case !errors.Is(err, wsroute.ErrLimitExceeded):
					done <- err
					return
				}
				continue
			}
			res, err := r.Groups().Broadcast(ctx, payload)
			if err != nil {
				done <- err
				return
			}
			sent.Add(int64(res.Delivered))
		}
		// The last frame says so; the queue may be full for a while.
		for ctx.Err() == nil {
			err := r.Connections().PostToConnection(ctx, id, []byte("end"))
			if !errors.Is(err, wsroute.ErrLimitExceeded) {
				done <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
		done <- ctx.Err()
	}()
	var got int64
	for {
		typ, b, err := c.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, websocket.MessageText, typ)
		if string(b) == "end" {
			break
		}
		require.Equal(t, payload, b)
		got++
	}
	require.NoError(t, <-done)
	require.Equal(t, sent.Load(), got, "every frame the router took arrives whole")
	require.Positive(t, got)
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
}
