package wsroute_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// TestControlFramesBetweenFragments sends, in one write, a text message in
// three fragments with pings and an unsolicited pong between them: the
// router answers each ping with its payload as it reads it, ignores the
// pong, and routes the message whole. Then the client closes, with a code
// and reason or with none, and the router answers with the same close frame,
// closes the socket and reports the close to $disconnect.
func TestControlFramesBetweenFragments(t *testing.T) {
	s := newSite(t, &wsroute.Options{MaxMessageSize: 1 << 20})
	for _, tc := range []struct {
		name     string
		size     int // bytes of the message: each length form of a frame's header
		close    []byte
		code     int
		reason   string
		wantCode int
	}{
		{"len7", 90, closeFrame(4000, "bye"), 4000, "bye", 4000},
		{"len16", 3000, clientFrame(finClose, nil), 1005, "Client-side close frame status not set", 1005},
		{"len64", 200 << 10, closeFrame(1000, ""), 1000, "", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, id := s.dialRawNamed(t, tc.name)

			msg := `{"action":"echo","pad":"` + strings.Repeat("p", tc.size-27) + `"}`
			third := len(msg) / 3
			var frames []byte
			frames = append(frames, clientFrame(0x01, []byte(msg[:third]))...)
			frames = append(frames, clientFrame(finPing, []byte("first ping"))...)
			frames = append(frames, clientFrame(0x8a, []byte("nobody asked"))...)
			frames = append(frames, clientFrame(0x00, []byte(msg[third:2*third]))...)
			frames = append(frames, clientFrame(finPing, nil)...)
			frames = append(frames, clientFrame(0x80, []byte(msg[2*third:]))...)
			require.NoError(t, c.write(frames))

			for i, want := range []string{"first ping", ""} {
				f, err := c.readFrame(testTimeout)
				require.NoError(t, err)
				require.Equal(t, fmt.Sprintf("opcode 10 %q", want), f.String(), "pong %d", i+1)
			}
			f, err := c.readFrame(testTimeout)
			require.NoError(t, err)
			require.Equal(t, byte(1), f.opcode)
			require.True(t, f.fin)
			require.Equal(t, msg, string(f.payload), "the message, routed whole")

			require.NoError(t, c.write(tc.close))
			f, err = c.readFrame(testTimeout)
			require.NoError(t, err)
			code, reason := f.close()
			require.Equal(t, byte(8), f.opcode)
			require.Equal(t, tc.wantCode, code, "the router's answer has the client's code")
			if tc.code != 1005 {
				require.Equal(t, tc.reason, reason)
			} else {
				require.Empty(t, f.payload, "no status: an empty close frame back")
			}
			require.NoError(t, c.expectEOF(testTimeout))
			s.log.requireDisconnect(t, id, tc.code, tc.reason)
		})
	}
	s.ln.requireAllClosed(t, testTimeout)
}

// TestOversizeHeaderInPieces refuses a frame over MaxMessageSize whose header
// arrives in two writes, the first of one byte: the router closes with 1009,
// reads on to the client's close frame, which follows the refused message
// whole, and then closes the socket, long before CloseTimeout would.
func TestOversizeHeaderInPieces(t *testing.T) {
	const limit = 1000
	s := newSite(t, &wsroute.Options{MaxMessageSize: limit, CloseTimeout: time.Minute})
	c, id := s.dialRawNamed(t, "pieces")

	frame := clientFrame(finText, []byte(`{"action":"echo","pad":"`+strings.Repeat("p", 2*limit)+`"}`))
	require.NoError(t, c.write(frame[:1]))
	time.Sleep(50 * time.Millisecond) // the first byte is read on its own
	require.NoError(t, c.write(append(frame[1:], closeFrame(1000, "")...)))
	require.NoError(t, c.expectClose(testTimeout, 1009, "Message too big"))
	s.log.requireDisconnect(t, id, 1009, "Message too big")
	require.NoError(t, c.expectEOF(testTimeout), "closed once the client's close frame is read")
}
