package wsroute_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// Helpers that speak WebSocket byte by byte, for the tests that send what no
// well-behaved client library would: frames that break RFC 6455, a message
// and a close frame in one write, a frame that arrives one byte at a time.

// rawConn is a client connection whose frames the test writes itself.
type rawConn struct {
	nc net.Conn
	br *bufio.Reader
}

// rawUpgradeRequest is a valid upgrade request for path on addr; extra
// header lines (each ending in \r\n) are added to it.
func rawUpgradeRequest(addr, path, extra string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// rawHTTP sends req on a new connection to addr and returns the response
// (its body read), without a WebSocket client's checks.
func rawHTTP(addr, req string, within time.Duration) (*http.Response, string, error) {
	nc, err := net.DialTimeout("tcp", addr, within)
	if err != nil {
		return nil, "", err
	}
	defer nc.Close()
	if err := nc.SetDeadline(time.Now().Add(within)); err != nil {
		return nil, "", err
	}
	if _, err := io.WriteString(nc, req); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// dialRaw completes a handshake to addr and path by hand. after, when not
// empty, is written in the same write as the request: frames that reach the
// server together with the handshake.
func dialRaw(addr, path string, after []byte, within time.Duration) (*rawConn, error) {
	nc, err := net.DialTimeout("tcp", addr, within)
	if err != nil {
		return nil, err
	}
	if err := nc.SetDeadline(time.Now().Add(within)); err != nil {
		nc.Close()
		return nil, err
	}
	req := append([]byte(rawUpgradeRequest(addr, path, "")), after...)
	if _, err := nc.Write(req); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, fmt.Errorf("handshake answered %s", resp.Status)
	}
	return &rawConn{nc: nc, br: br}, nil
}

// clientFrame returns one frame as a client sends it: first is the first
// byte (FIN, RSV and opcode bits), the payload is masked.
func clientFrame(first byte, payload []byte) []byte {
	return appendFrame(nil, first, payload, true)
}

func appendFrame(b []byte, first byte, payload []byte, masked bool) []byte {
	b = append(b, first)
	maskBit := byte(0)
	if masked {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, maskBit|byte(n))
	case n <= 0xffff:
		b = append(b, maskBit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// Opcodes with FIN set.
const (
	finText   = 0x81
	finBinary = 0x82
	finClose  = 0x88
	finPing   = 0x89
)

// textFrame is a masked, unfragmented text frame.
func textFrame(s string) []byte { return clientFrame(finText, []byte(s)) }

// closeFrame is a masked close frame with a code and reason.
func closeFrame(code uint16, reason string) []byte {
	return clientFrame(finClose, append(binary.BigEndian.AppendUint16(nil, code), reason...))
}

// write writes b in one write.
func (c *rawConn) write(b []byte) error {
	_, err := c.nc.Write(b)
	return err
}

// serverFrame is one frame the server sent.
type serverFrame struct {
	opcode  byte
	fin     bool
	payload []byte
}

func (f serverFrame) String() string {
	if f.opcode == 8 {
		code, reason := f.close()
		return fmt.Sprintf("close %d %q", code, reason)
	}
	return fmt.Sprintf("opcode %d %q", f.opcode, truncateString(string(f.payload), 40))
}

// close returns the code and reason of a close frame; 1005 when it has none.
func (f serverFrame) close() (int, string) {
	if len(f.payload) < 2 {
		return 1005, ""
	}
	return int(binary.BigEndian.Uint16(f.payload)), string(f.payload[2:])
}

func truncateString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// readFrame reads one frame the server sent. Server frames are never masked.
func (c *rawConn) readFrame(within time.Duration) (serverFrame, error) {
	if err := c.nc.SetReadDeadline(time.Now().Add(within)); err != nil {
		return serverFrame{}, err
	}
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return serverFrame{}, err
	}
	if h[1]&0x80 != 0 {
		return serverFrame{}, errors.New("the server sent a masked frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(c.br, ext[:]); err != nil {
			return serverFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(c.br, ext[:]); err != nil {
			return serverFrame{}, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > 1<<24 {
		return serverFrame{}, fmt.Errorf("frame of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return serverFrame{}, err
	}
	return serverFrame{opcode: h[0] & 0x0f, fin: h[0]&0x80 != 0, payload: p}, nil
}

// readUntilClose reads frames until the server's close frame and returns the
// frames before it and its code and reason. It fails if the socket ends
// without a close frame.
func (c *rawConn) readUntilClose(within time.Duration) (before []serverFrame, code int, reason string, err error) {
	deadline := time.Now().Add(within)
	for {
		f, err := c.readFrame(time.Until(deadline))
		if err != nil {
			return before, 0, "", fmt.Errorf("no close frame (after %d frames): %w", len(before), err)
		}
		if f.opcode == 8 {
			code, reason := f.close()
			return before, code, reason, nil
		}
		before = append(before, f)
	}
}

// expectClose reads until the server's close frame and checks it.
func (c *rawConn) expectClose(within time.Duration, code int, reason string) error {
	_, got, gotReason, err := c.readUntilClose(within)
	if err != nil {
		return err
	}
	if got != code || gotReason != reason {
		return fmt.Errorf("server closed with %d %q, want %d %q", got, gotReason, code, reason)
	}
	if !utf8.ValidString(gotReason) {
		return fmt.Errorf("close reason %q is not UTF-8", gotReason)
	}
	return nil
}

// expectEOF reads until the server closes the socket, and fails if that
// does not happen within the bound.
func (c *rawConn) expectEOF(within time.Duration) error {
	if err := c.nc.SetReadDeadline(time.Now().Add(within)); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, c.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("the server did not close the socket within %v", within)
	}
	return nil
}

func (c *rawConn) Close() error { return c.nc.Close() }

// dialRawNamed completes a handshake by hand to s as name, and returns the
// connection, closed when t ends, and its connection ID.
func (s *site) dialRawNamed(t *testing.T, name string) (*rawConn, string) {
	t.Helper()
	addr, path := s.hostPath(name)
	c, err := dialRaw(addr, path, nil, testTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, s.log.id(name)
}

// hostPath returns the listener address and the path with the query of a
// site's URL for name.
func (s *site) hostPath(name string) (string, string) {
	return s.srv.Listener.Addr().String(), "/?name=" + strings.TrimSpace(name)
}
