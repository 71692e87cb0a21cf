package wsroute

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNoDataFrameAfterClose writes, as the transport does, a pong and then a
// close frame through a wireConn on which the router writes data frames: a
// data frame before the close goes out, one after it is refused, and what
// reaches the peer is exactly the frames in order.
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

	pong := []byte{0x8a, 0x00}
	closeFrame := []byte{0x88, 0x02, 0x03, 0xe8} // 1000
	_, err := w.Write(pong)
	require.NoError(t, err)
	require.NoError(t, w.writeFrame(frame{data: "hi"}))
	_, err = w.Write(closeFrame)
	require.NoError(t, err)
	err = w.writeFrame(frame{data: "late"})
	require.True(t, errors.Is(err, errCloseSent), "a data frame after the close frame: %v", err)
	prepared := prepareFrame(false, []byte("late too"))
	err = w.writeFrame(frame{data: string(prepared), prepared: true})
	require.True(t, errors.Is(err, errCloseSent), "a prepared data frame after the close frame: %v", err)
	require.NoError(t, server.Close())

	want := bytes.Join([][]byte{pong, {0x81, 0x02, 'h', 'i'}, closeFrame}, nil)
	require.Equal(t, want, <-got)
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
