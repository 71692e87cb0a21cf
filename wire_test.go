package wsroute_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// echoed is the message each connection of the wire tests sends first, in
// the same write as the frame under test: its reply must come back before
// the close frame.
const echoed = `{"action":"echo","n":"before"}`

// TestProtocolViolations writes, byte by byte, frames that break RFC 6455.
// The router answers each with 1002 and a reason naming the violation (also
// where the transport would close the socket without a close frame), reports
// the same to $disconnect, closes the socket, and leaves a bystander alone.
func TestProtocolViolations(t *testing.T) {
	s := newSite(t, nil)
	bystander, _ := dialNamed(t, s, "bystander", dialOpts{})
	withLength64 := func(first byte, n uint64) []byte {
		b := []byte{first, 0x80 | 127}
		b = binary.BigEndian.AppendUint64(b, n)
		return append(b, 1, 2, 3, 4)
	}
	for _, tc := range []struct {
		name   string
		frames []byte
		reason string
	}{
		{"RSV1", clientFrame(0xc1, []byte("x")), "Reserved bits set"},
		{"RSV2", clientFrame(0xa1, []byte("x")), "Reserved bits set"},
		{"RSV3", clientFrame(0x91, []byte("x")), "Reserved bits set"},
		{"reserved data opcode", clientFrame(0x83, []byte("x")), "Reserved opcode 3"},
		{"reserved control opcode", clientFrame(0x8b, []byte("x")), "Reserved opcode 11"},
		{"unmasked frame", appendFrame(nil, finText, []byte("hi"), false), "Client frame not masked"},
		{"64-bit length with the top bit set", withLength64(finText, 1<<63), "Frame length over 2^63-1"},
		{"ping of 126 bytes", clientFrame(finPing, make([]byte, 126)), "Control frame longer than 125 bytes"},
		{"fragmented ping", clientFrame(0x09, []byte("x")), "Fragmented control frame"},
		{"close payload of 1 byte", clientFrame(finClose, []byte{3}), "Close frame payload of 1 byte"},
		{"close code 999", closeFrame(999, ""), "Invalid close code 999"},
		{"close code 1004", closeFrame(1004, ""), "Invalid close code 1004"},
		{"close code 1005", closeFrame(1005, ""), "Invalid close code 1005"},
		{"close code 1006", closeFrame(1006, ""), "Invalid close code 1006"},
		{"close code 1015", closeFrame(1015, ""), "Invalid close code 1015"},
		{"close code 2999", closeFrame(2999, "x"), "Invalid close code 2999"},
		{"close code 5000", closeFrame(5000, ""), "Invalid close code 5000"},
		{"continuation without a message", clientFrame(0x80, []byte("x")), "Continuation frame without a message to continue"},
		{"new message inside a fragmented one", append(clientFrame(0x01, []byte(`{"a`)), clientFrame(finText, []byte("x"))...),
			"New message before the previous one ended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			c, id := s.dialRawNamed(t, name)
			require.NoError(t, c.write(append(textFrame(echoed), tc.frames...)))
			before, code, reason, err := c.readUntilClose(testTimeout)
			require.NoError(t, err)
			require.Len(t, before, 1, "the reply to the message before the bad frame")
			assert.Equal(t, echoed, string(before[0].payload))
			assert.Equal(t, []any{1002, tc.reason}, []any{code, reason}, "the close frame")
			s.log.requireDisconnect(t, id, 1002, tc.reason)
			require.NoError(t, c.expectEOF(testTimeout))
		})
	}
	send(t, bystander.ws, `{"action":"echo","n":"bystander"}`)
	assert.Equal(t, `{"action":"echo","n":"bystander"}`, read(t, bystander.ws))
	require.NoError(t, bystander.ws.Close(websocket.StatusNormalClosure, ""))
	s.ln.requireAllClosed(t, testTimeout)

}

// TestCloseReasonMustBeUTF8: a close frame whose reason is not UTF-8 is
// refused with 1007, as a text frame is, and its bytes reach no handler; a
// valid reason is echoed and reported.
func TestCloseReasonMustBeUTF8(t *testing.T) {
	s := newSite(t, nil)
	for _, tc := range []struct {
		name, reason string
		code         int
		want         string
	}{
		{"invalid", "bye \xff\xfe", 1007, "Close frame reason is not valid UTF-8"},
		{"truncated", "bye \xc3", 1007, "Close frame reason is not valid UTF-8"},
		{"surrogate", "bye \xed\xa0\x80", 1007, "Close frame reason is not valid UTF-8"},
		{"valid", "au revoir ü", 1000, "au revoir ü"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, id := s.dialRawNamed(t, tc.name)
			require.NoError(t, c.write(append(textFrame(echoed), closeFrame(1000, tc.reason)...)))
			before, code, reason, err := c.readUntilClose(testTimeout)
			require.NoError(t, err)
			require.Len(t, before, 1)
			assert.Equal(t, []any{tc.code, tc.want}, []any{code, reason})
			s.log.requireDisconnect(t, id, tc.code, tc.want)
		})
	}
	s.ln.requireAllClosed(t, testTimeout)
}

// TestOversizeAnnouncementRefusedAtOnce: a frame whose header announces more
// than MaxMessageSize, alone or added to the frames before it in the same
// message, is refused with 1009 as soon as the header arrives, although
// none of its bytes follow. The router then waits for the client's close
// frame after the bytes announced, which never come, so the socket is
// closed after CloseTimeout.
func TestOversizeAnnouncementRefusedAtOnce(t *testing.T) {
	const limit = 1000
	s := newSite(t, &wsroute.Options{MaxMessageSize: limit, CloseTimeout: 500 * time.Millisecond})
	header := func(first byte, n int) []byte {
		b := []byte{first, 0x80 | 126}
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		return append(b, 9, 8, 7, 6)
	}
	fragment := clientFrame(0x01, []byte(`{"action":"echo","pad":"`+strings.Repeat("p", 600-len(`{"action":"echo","pad":"`))))
	for _, tc := range []struct {
		name   string
		frames []byte
	}{
		{"one frame", header(finText, limit+1)},
		{"the second fragment", append(fragment, header(0x80, limit-600+1)...)},
		{"binary frame", header(finBinary, 60000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			c, id := s.dialRawNamed(t, name)
			require.NoError(t, c.write(append(textFrame(echoed), tc.frames...)))
			// Nothing more is sent: the refusal must not wait for the bytes
			// announced, nor for the keepalive.
			before, code, reason, err := c.readUntilClose(testTimeout)
			require.NoError(t, err)
			require.Len(t, before, 1)
			assert.Equal(t, []any{1009, "Message too big"}, []any{code, reason})
			s.log.requireDisconnect(t, id, 1009, "Message too big")
			require.NoError(t, c.expectEOF(testTimeout))
		})
	}

	// A message of exactly the limit, in two fragments, is fine.
	addr, path := s.hostPath("exact")
	c, err := dialRaw(addr, path, nil, testTimeout)
	require.NoError(t, err)
	defer c.Close()
	rest := `"}`
	rest = strings.Repeat("q", limit-600-len(rest)) + rest
	require.NoError(t, c.write(append(fragment, clientFrame(0x80, []byte(rest))...)))
	f, err := c.readFrame(testTimeout)
	require.NoError(t, err)
	assert.Len(t, f.payload, limit)
}

// TestOversizeMessageWrittenWhole: a client that writes a message over
// MaxMessageSize whole, in one frame as a browser does, finishes writing it,
// reads the 1009 close frame, and completes the close handshake: the router
// reads on, dropping the rest of the message, to the client's close frame,
// and closes the socket with nothing left unread (no reset).
func TestOversizeMessageWrittenWhole(t *testing.T) {
	const limit = 128 << 10
	s := newSite(t, &wsroute.Options{MaxMessageSize: limit})
	msg := `{"action":"echo","pad":"` + strings.Repeat("p", 200<<10) + `"}`
	// Several times: a socket's buffers may hold much of the message.
	for i := range 3 {
		t.Run(fmt.Sprint("client library ", i), func(t *testing.T) {
			name := fmt.Sprint("lib", i)
			c, id := dialNamed(t, s, name, dialOpts{})
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			require.NoError(t, c.ws.Write(ctx, websocket.MessageText, []byte(msg)), "the client writes the message to its end")
			ce, err := closeStatus(c.ws, testTimeout)
			require.NoError(t, err)
			assert.Equal(t, websocket.CloseError{Code: websocket.StatusMessageTooBig, Reason: "Message too big"}, ce)
			s.log.requireDisconnect(t, id, 1009, "Message too big")
		})
		t.Run(fmt.Sprint("raw ", i), func(t *testing.T) {
			name := fmt.Sprint("raw", i)
			c, id := s.dialRawNamed(t, name)
			// The message, a ping in it, the rest, and the client's close frame, in one write.
			frames := append(clientFrame(0x01, []byte(msg[:150<<10])), clientFrame(finPing, []byte("still here"))...)
			frames = append(frames, clientFrame(0x80, []byte(msg[150<<10:]))...)
			frames = append(frames, closeFrame(1000, "")...)
			require.NoError(t, c.nc.SetWriteDeadline(time.Now().Add(testTimeout)))
			require.NoError(t, c.write(frames), "the client writes the message to its end")
			require.NoError(t, c.expectClose(testTimeout, 1009, "Message too big"))
			s.log.requireDisconnect(t, id, 1009, "Message too big")
			require.NoError(t, c.nc.SetReadDeadline(time.Now().Add(testTimeout)))
			_, err := io.Copy(io.Discard, c.br)
			require.NoError(t, err, "the server closes the socket once it has read the client's close frame")
		})
	}
	s.ln.requireAllClosed(t, testTimeout)
}

// slowWrite writes b in pieces of n bytes, one piece per interval.
func slowWrite(c *rawConn, b []byte, n int, interval time.Duration) error {
	for len(b) > 0 {
		k := min(n, len(b))
		if err := c.write(b[:k]); err != nil {
			return err
		}
		b = b[k:]
		time.Sleep(interval)
	}
	return nil
}

// readAnsweringPings reads the next data or close frame, answering pings.
func (c *rawConn) readAnsweringPings(within time.Duration) (serverFrame, error) {
	deadline := time.Now().Add(within)
	for {
		f, err := c.readFrame(time.Until(deadline))
		if err != nil || f.opcode != 9 {
			return f, err
		}
		if err := c.write(clientFrame(0x8a, f.payload)); err != nil {
			return f, err
		}
	}
}

// TestSlowLegalMessageIsNotDropped: a legal message that arrives slowly, one
// piece at a time, over many ping intervals, is handled: the bytes arriving
// count as the client's answer to pings it cannot read mid-frame.
func TestSlowLegalMessageIsNotDropped(t *testing.T) {
	const ping, pong = 100 * time.Millisecond, 150 * time.Millisecond
	s := newSite(t, &wsroute.Options{PingInterval: ping, PongTimeout: pong})
	c, id := s.dialRawNamed(t, "slow")
	msg := `{"action":"echo","pad":"` + strings.Repeat("s", 1500) + `"}`
	// 1.5 KiB at 50 bytes every 50 ms: 1.6 s, many times ping+pong.
	require.NoError(t, slowWrite(c, textFrame(msg), 50, 50*time.Millisecond))
	f, err := c.readAnsweringPings(testTimeout)
	require.NoError(t, err)
	assert.Equal(t, msg, string(f.payload), "%v", f)
	assert.Empty(t, s.log.disconnects(id), "the slow message was dropped")
	require.NoError(t, c.write(closeFrame(1000, "done")))
	for {
		f, err := c.readAnsweringPings(testTimeout)
		require.NoError(t, err)
		if f.opcode == 8 {
			code, reason := f.close()
			assert.Equal(t, []any{1000, "done"}, []any{code, reason})
			break
		}
	}
	s.log.requireDisconnect(t, id, 1000, "done")
}

// TestMessageTimeout: a message that has not come whole within
// MessageTimeout closes the connection with 1008; the time a handler runs
// while the next message waits does not count.
func TestMessageTimeout(t *testing.T) {
	const limit = 400 * time.Millisecond
	// Every other deadline off: the message's own arms the timer.
	s := newSite(t, &wsroute.Options{MessageTimeout: limit, PingInterval: -1, IdleTimeout: -1, MaxConnectionDuration: -1})
	s.r.HandleFunc("slowhandler", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		time.Sleep(3 * limit)
		return &wsroute.Response{StatusCode: 200, Body: "slept"}, nil
	})

	t.Run("withheld rest", func(t *testing.T) {
		c, id := s.dialRawNamed(t, "withheld")
		frame := textFrame(`{"action":"echo","pad":"` + strings.Repeat("w", 500) + `"}`)
		start := time.Now()
		require.NoError(t, c.write(frame[:300]))
		require.NoError(t, c.expectClose(testTimeout, 1008, "Message took too long"))
		assert.GreaterOrEqual(t, time.Since(start), limit-50*time.Millisecond)
		s.log.requireDisconnect(t, id, 1008, "Message took too long")
		require.NoError(t, c.expectEOF(testTimeout))
	})

	t.Run("a slow handler does not count", func(t *testing.T) {
		c, id := s.dialRawNamed(t, "handler")
		next := textFrame(`{"action":"echo","n":"next"}`)
		// The next message begins while the slow handler runs, and ends
		// after it, within the limit of the read loop's return.
		require.NoError(t, c.write(append(textFrame(`{"action":"slowhandler"}`), next[:10]...)))
		time.Sleep(3*limit + limit/4)
		require.NoError(t, c.write(next[10:]))
		for _, want := range []string{"slept", `{"action":"echo","n":"next"}`} {
			f, err := c.readFrame(testTimeout)
			require.NoError(t, err)
			require.Equal(t, want, string(f.payload), "%v", f)
		}
		assert.Empty(t, s.log.disconnects(id))
	})
}
