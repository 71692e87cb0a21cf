package wsroute

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"

	"github.com/coder/websocket"
)

// The read side's frames, read by the router itself.
//
// Without compression the router reads the frames too (with compression the
// transport reads them, as it must decompress): from its own bufio.Reader
// over the wireConn, which has checked every frame against RFC 6455 and the
// size limits before the reader sees it (wire.go). What is left here is to
// unmask the payloads, join a message's fragments and answer the control
// frames between them: a ping with a pong, a pong by waking the keepalive
// ping that waits for it, a close frame by answering it (unless the router
// has begun a close of its own, whose frame goes out instead) and ending the
// read. The transport's reader would take two locks and check its close
// state for every frame and every read of a message, and read each header a
// byte at a time (BENCHMARKS.md, "Why raw coder/websocket costs more than
// gorilla per message").
//
// The router closes as the transport would: its close frame goes out after
// the frames queued before it (drain), and the read loop reads on, dropping
// data frames, until the client's close frame comes or the CloseTimeout
// deadline ends the read; the socket is closed once both the close frame has
// been written and the read loop has ended (finish, drain).

// readChunk bounds what the reader makes room for at a time in a message's
// buffer, so that a client announcing a large frame holds memory only as
// its bytes arrive.
const readChunk = 16 << 10

// readMessage reads the next data message into buf and reports whether it is
// binary, answering the control frames that come before its end. It returns
// a websocket.CloseError when the client's close frame comes, and the
// wireConn's refusal when a frame breaks a rule.
func (c *conn) readMessage(buf *bytes.Buffer) (isBinary bool, err error) {
	if !c.wire.rawData {
		typ, rd, err := c.ws.Reader(context.Background())
		if err != nil {
			return false, err
		}
		_, err = buf.ReadFrom(rd)
		return typ == websocket.MessageBinary, err
	}
	br := c.wire.br
	for {
		// The wireConn has checked the header: it is masked, its opcode
		// and length are allowed, and a continuation continues a message.
		h, err := br.Peek(2)
		if err != nil {
			return false, err
		}
		n := 2 + 4
		switch h[1] & 0x7f {
		case 126:
			n += 2
		case 127:
			n += 8
		}
		if h, err = br.Peek(n); err != nil {
			return false, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		size := int64(h[1] & 0x7f)
		switch size {
		case 126:
			size = int64(binary.BigEndian.Uint16(h[2:4]))
		case 127:
			size = int64(binary.BigEndian.Uint64(h[2:10]))
		}
		key := binary.LittleEndian.Uint32(h[n-4 : n])
		_, _ = br.Discard(n)

		if op&0x8 != 0 {
			// A control frame, of at most 125 bytes: it fits the buffer,
			// and is unmasked there.
			p, err := br.Peek(int(size))
			if err != nil {
				return false, err
			}
			maskBytes(p, key)
			switch op {
			case opPing:
				_ = c.wire.writeControl(opPong, p) // a failed write shows on the next read or write
			case opPong:
				c.pong(p)
			case opClose:
				return false, c.closeReceived(p)
			}
			_, _ = br.Discard(len(p))
			continue
		}
		if op != opContinuation {
			isBinary = op == opBinary
		}
		start := buf.Len()
		for left := size; left > 0; {
			buf.Grow(int(min(left, readChunk)))
			p := buf.AvailableBuffer()
			p = p[:min(int64(cap(p)), left)]
			k, err := br.Read(p)
			buf.Write(p[:k]) // the bytes are in place: this only lengthens buf
			left -= int64(k)
			if err != nil {
				return false, err
			}
		}
		maskBytes(buf.Bytes()[start:], key)
		if fin {
			return isBinary, nil
		}
	}
}

// maskBytes unmasks b, a frame's payload from its first byte, with the
// frame's masking key as a little-endian uint32 (RFC 6455 §5.3).
func maskBytes(b []byte, key uint32) {
	k := uint64(key) | uint64(key)<<32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(key >> (8 * (i & 3)))
	}
}

// closeReceived answers the client's close frame with payload p, which the
// wireConn has checked, and returns it as the transport would.
func (c *conn) closeReceived(p []byte) error {
	ce := websocket.CloseError{Code: websocket.StatusNoStatusRcvd}
	if len(p) >= 2 {
		ce.Code, ce.Reason = websocket.StatusCode(binary.BigEndian.Uint16(p)), string(p[2:])
	}
	c.mu.Lock()
	routerClosing := c.code != 0
	c.mu.Unlock()
	if !routerClosing {
		// The same code and reason back (RFC 6455 §5.5.1). A close the
		// router has begun sends its own frame, after the frames queued
		// before it.
		_ = c.wire.writeClose(ce.Code, ce.Reason)
	}
	return ce
}

// writeClose writes the router's close frame, after the frames queued before
// it. When the read loop has ended meanwhile it releases the socket; else the
// read loop does, once the client answers or the deadline passes.
func (c *conn) writeClose(code websocket.StatusCode, reason string) {
	_ = c.wire.writeClose(code, reason) // a failed write ends the read too
	c.mu.Lock()
	c.closeDone = true
	ended := c.state == stateClosed
	c.mu.Unlock()
	if ended {
		c.closeSocket()
	}
}

// closeSocket closes the connection's socket, at once.
func (c *conn) closeSocket() {
	if c.ws != nil {
		_ = c.ws.CloseNow()
		return
	}
	_ = c.wire.Close()
}

// pingWait is a keepalive ping waiting for its pong.
type pingWait struct {
	payload [8]byte
	pong    chan struct{} // closed when the pong comes
}

// ping sends a ping and waits for its pong, or for ctx.
func (c *conn) ping(ctx context.Context) error {
	if !c.wire.rawData {
		return c.ws.Ping(ctx)
	}
	p := &pingWait{pong: make(chan struct{})}
	binary.LittleEndian.PutUint64(p.payload[:], rand.Uint64())
	c.mu.Lock()
	c.pinging = p
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.pinging == p {
			c.pinging = nil
		}
		c.mu.Unlock()
	}()
	if err := c.wire.writeControl(opPing, p.payload[:]); err != nil {
		return err
	}
	select {
	case <-p.pong:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pong runs on the read loop for a pong with payload p: the ping that waits
// for it, if any, is answered. Other pongs are ignored (RFC 6455 §5.5.3).
func (c *conn) pong(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.pinging; w != nil && bytes.Equal(w.payload[:], p) {
		close(w.pong)
		c.pinging = nil
	}
}
