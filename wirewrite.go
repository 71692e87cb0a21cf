package wsroute

import (
	"encoding/binary"
	"errors"
	"sync"
	"unsafe"

	"github.com/coder/websocket"
)

// The write side of a connection, as it goes onto the wire.
//
// Without compression the router writes data frames itself: a server's frame
// is not masked, so it is a header of 2 to 10 bytes and the payload as it is,
// and a frame posted to many connections is encoded once and written to each
// as the same bytes (a prepared frame), with one system call per connection
// and no copy. The transport's Write would take two locks built on channels,
// check its close state and copy the payload into the connection's
// bufio.Writer on every frame (BENCHMARKS.md, "Why raw coder/websocket costs
// more than gorilla per message").
//
// The router writes the control frames too (wireread.go): pongs, its
// keepalive pings and close frames. writeFrame and writeControl hold one
// mutex, so frames never interleave. Once a close frame has gone out, whoever
// wrote it (the router closing, or the read loop answering the client's
// close), no frame may follow (RFC 6455 §5.5.1): writeFrame refuses with
// errCloseSent, which the router treats as any failed write.
//
// With compression the transport writes everything, as it must compress.

// errCloseSent is writeFrame's error once a close frame has been written.
var errCloseSent = errors.New("wsroute: close frame already sent")

// maxHeader is the longest header of a server's frame: 2 bytes, and 8 of
// extended length.
const maxHeader = 10

// appendFrameHeader appends the header of an unmasked, final data frame of n
// payload bytes.
func appendFrameHeader(b []byte, isBinary bool, n int) []byte {
	op := byte(opText)
	if isBinary {
		op = opBinary
	}
	switch {
	case n < 126:
		return append(b, 0x80|op, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0x80|op, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0x80|op, 127), uint64(n))
	}
}

// prepareFrame encodes a data frame whole, for writing as it is to many
// connections.
func prepareFrame(isBinary bool, payload []byte) []byte {
	b := make([]byte, 0, maxHeader+len(payload))
	return append(appendFrameHeader(b, isBinary, len(payload)), payload...)
}

// size is the length of f's payload.
func (f *frame) size() int {
	if !f.prepared {
		return len(f.data)
	}
	switch f.data[1] & 0x7f {
	case 126:
		return len(f.data) - 4
	case 127:
		return len(f.data) - 10
	}
	return len(f.data) - 2
}

// frameBuffers recycles what writeFrame encodes a frame into.
var frameBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledFrame bounds the buffers frameBuffers keeps.
const maxPooledFrame = 64 << 10

// writeFrame writes one data frame of f: its bytes when f is prepared, else
// a header and f.data, with one Write.
func (w *wireConn) writeFrame(f frame) error {
	if f.prepared {
		return w.writeLocked(unsafe.Slice(unsafe.StringData(f.data), len(f.data)))
	}
	bp := frameBuffers.Get().(*[]byte)
	b := append(appendFrameHeader((*bp)[:0], f.binary, len(f.data)), f.data...)
	err := w.writeLocked(b)
	if cap(b) <= maxPooledFrame {
		*bp = b[:0]
		frameBuffers.Put(bp)
	}
	return err
}

func (w *wireConn) writeLocked(b []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closeSent {
		return errCloseSent
	}
	_, err := w.Conn.Write(b)
	return err
}

// writeControl writes a control frame of at most 125 bytes of payload: a
// pong, a keepalive ping, or a close frame, which ends the data frames.
func (w *wireConn) writeControl(op byte, payload []byte) error {
	b := make([]byte, 0, 2+len(payload))
	b = append(append(b, 0x80|op, byte(len(payload))), payload...)
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closeSent {
		return errCloseSent
	}
	if op == opClose {
		w.closeSent = true
	}
	_, err := w.Conn.Write(b)
	return err
}

// errNoCloseFrame is writeClose's error for a code that no close frame may
// carry.
var errNoCloseFrame = errors.New("wsroute: no close frame carries this code")

// writeClose writes a close frame with code and reason: without a payload
// for 1005 (no status), and none at all for a code that may not be sent
// (1006 after a failed write).
func (w *wireConn) writeClose(code websocket.StatusCode, reason string) error {
	if code == websocket.StatusNoStatusRcvd {
		return w.writeControl(opClose, nil)
	}
	if !validCloseCode(code) {
		return errNoCloseFrame
	}
	var p [125]byte
	binary.BigEndian.PutUint16(p[:], uint16(code))
	return w.writeControl(opClose, p[:2+copy(p[2:], reason)])
}

// Write is the transport's write, with compression, where the transport
// writes every frame.
func (w *wireConn) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return w.Conn.Write(p)
}
