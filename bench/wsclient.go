package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"
)

// wsConn is the load generator's WebSocket client: a socket, a small read
// buffer and no goroutine of its own, so that 10,000 of them cost the load
// generator little and every implementation meets the same client. It sends
// masked text frames and reads unfragmented or fragmented server frames,
// answering pings. It is not safe for concurrent use, except that one
// goroutine may read while another writes.
type wsConn struct {
	nc   net.Conn
	br   *bufio.Reader
	mask [4]byte
	wbuf []byte // the frame being written; used by the writer only
	pong []byte // a pong written by the reader
}

// errClosed is what read returns on the server's close frame.
var errClosed = errors.New("connection closed")

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// statusError is a refused upgrade.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("upgrade refused with %d", e.code) }

// dialWS opens a WebSocket connection to ws://addr/ws?token=tok within
// timeout.
func dialWS(addr, tok string, timeout time.Duration) (*wsConn, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(timeout))
	var key [16]byte
	rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	if _, err := fmt.Fprintf(nc, "GET /ws?token=%s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", tok, addr, k); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 1024)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body.Close()
		nc.Close()
		return nil, &statusError{resp.StatusCode}
	}
	sum := sha1.Sum([]byte(k + wsGUID))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		nc.Close()
		return nil, errors.New("upgrade: wrong Sec-WebSocket-Accept")
	}
	nc.SetDeadline(time.Time{})
	c := &wsConn{nc: nc, br: br}
	rand.Read(c.mask[:])
	return c, nil
}

// frame appends a masked client frame to dst.
func (c *wsConn) frame(dst []byte, opcode byte, p []byte) []byte {
	dst = append(dst, 0x80|opcode)
	switch n := len(p); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, c.mask[:]...)
	start := len(dst)
	dst = append(dst, p...)
	for i := range p {
		dst[start+i] ^= c.mask[i&3]
	}
	return dst
}

// writeText sends p as one text frame.
func (c *wsConn) writeText(p []byte) error {
	c.wbuf = c.frame(c.wbuf[:0], 0x1, p)
	_, err := c.nc.Write(c.wbuf)
	return err
}

// read returns the next data message, appended to buf[:0]. It answers pings
// and returns errClosed on a close frame.
func (c *wsConn) read(buf []byte) ([]byte, error) {
	buf = buf[:0]
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
			return nil, err
		}
		fin, opcode := hdr[0]&0x80 != 0, hdr[0]&0x0f
		if hdr[1]&0x80 != 0 {
			return nil, errors.New("masked server frame")
		}
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(hdr[:2]))
		case 127:
			if _, err := io.ReadFull(c.br, hdr[:8]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(hdr[:8])
		}
		if n > 1<<20 {
			return nil, fmt.Errorf("frame of %d bytes", n)
		}
		if opcode >= 0x8 { // control frame
			p := make([]byte, n)
			if _, err := io.ReadFull(c.br, p); err != nil {
				return nil, err
			}
			switch opcode {
			case 0x8:
				return nil, errClosed
			case 0x9:
				c.pong = c.frame(c.pong[:0], 0xA, p)
				if _, err := c.nc.Write(c.pong); err != nil {
					return nil, err
				}
			}
			continue
		}
		start := len(buf)
		buf = slices.Grow(buf, int(n))[:start+int(n)]
		if _, err := io.ReadFull(c.br, buf[start:]); err != nil {
			return nil, err
		}
		if fin {
			return buf, nil
		}
	}
}

// close sends a close frame with 1000 and waits up to timeout for the
// server's, then closes the socket.
func (c *wsConn) close(timeout time.Duration) error {
	defer c.nc.Close()
	c.nc.SetDeadline(time.Now().Add(timeout))
	c.wbuf = c.frame(c.wbuf[:0], 0x8, []byte{0x03, 0xe8})
	if _, err := c.nc.Write(c.wbuf); err != nil {
		return err
	}
	for range 16 {
		if _, err := c.read(nil); err != nil {
			if errors.Is(err, errClosed) || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
	return errors.New("no close frame")
}
