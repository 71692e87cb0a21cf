package wsroute

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// TestNoDataFrameAfterClose writes a pong and then a close frame through a
// wireConn on which the router writes the frames: a data frame before the
// close goes out, a data frame or a ping after it is refused, and what
// reaches the peer is exactly the frames in order. The close frames a
// server may not send (1006) are refused, and 1005 is a close frame without
// a payload.
func TestNoDataFrameAfterClose(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	w := newWireConn(server, nil, 1<<20, 0, nil)
	w.rawData = true
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()

	require.NoError(t, w.writeControl(opPong, []byte("p")))
	require.NoError(t, w.writeFrame(frame{data: "hi"}))
	require.ErrorIs(t, w.writeClose(websocket.StatusAbnormalClosure, ""), errNoCloseFrame)
	require.NoError(t, w.writeClose(websocket.StatusNormalClosure, "bye"))
	err := w.writeFrame(frame{data: "late"})
	require.True(t, errors.Is(err, errCloseSent), "a data frame after the close frame: %v", err)
	prepared := prepareFrame(false, []byte("late too"))
	err = w.writeFrame(frame{data: string(prepared), prepared: true})
	require.True(t, errors.Is(err, errCloseSent), "a prepared data frame after the close frame: %v", err)
	require.ErrorIs(t, w.writeControl(opPing, nil), errCloseSent)
	require.ErrorIs(t, w.writeClose(websocket.StatusNoStatusRcvd, ""), errCloseSent)
	require.NoError(t, server.Close())

	want := bytes.Join([][]byte{{0x8a, 0x01, 'p'}, {0x81, 0x02, 'h', 'i'}, {0x88, 0x05, 0x03, 0xe8, 'b', 'y', 'e'}}, nil)
	require.Equal(t, want, <-got)

	// 1005: no payload.
	server, client = net.Pipe()
	defer client.Close()
	w = newWireConn(server, nil, 1<<20, 0, nil)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	require.NoError(t, w.writeClose(websocket.StatusNoStatusRcvd, ""))
	require.NoError(t, server.Close())
	require.Equal(t, []byte{0x88, 0x00}, <-got)
}

// TestMaskBytes unmasks payloads of every length up to 40 bytes, which
// crosses the word-at-a-time loop's boundary, against the byte-wise rule of
// RFC 6455 §5.3.
func TestMaskBytes(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	for n := 0; n <= 40; n++ {
		plain := make([]byte, n)
		for i := range plain {
			plain[i] = byte(i*7 + 1)
		}
		masked := make([]byte, n)
		for i := range plain {
			masked[i] = plain[i] ^ key[i%4]
		}
		maskBytes(masked, binary.LittleEndian.Uint32(key[:]))
		require.Equal(t, plain, masked, "length %d", n)
	}
}

// TestFrameHeaderForms checks the three length forms of a server's frame
// header (RFC 6455 §5.2) and that size recovers the payload's length from a
// prepared frame.
func TestFrameHeaderForms(t *testing.T) {
	for _, c := range []struct {
		n    int
		bin  bool
		head []byte
	}{
		{0, false, []byte{0x81, 0}},
		{125, false, []byte{0x81, 125}},
		{126, true, []byte{0x82, 126, 0, 126}},
		{65535, false, []byte{0x81, 126, 0xff, 0xff}},
		{65536, true, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		p := bytes.Repeat([]byte{'z'}, c.n)
		b := prepareFrame(c.bin, p)
		require.Equal(t, c.head, b[:len(c.head)], "header of %d bytes", c.n)
		require.Equal(t, p, b[len(c.head):])
		f := frame{data: string(b), binary: c.bin, prepared: true}
		require.Equal(t, c.n, f.size())
		require.Equal(t, c.n, (&frame{data: string(p)}).size())
	}
}
