package wsroute

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// The handshake's last step: the 101 response and the switch to frames.
//
// By the time it runs the router has checked the request (checkHandshake,
// checkOrigin) and run $connect. Without compression the router then reads
// and writes the frames itself (wireread.go, wirewrite.go), and the 101
// response is all that is left of the transport's handshake: three headers,
// and a fourth when $connect chose a subprotocol that the client offered.
// The router writes it itself and keeps no transport connection, whose
// state (two channel-based locks, a map of pings, a finalizer) it would
// never use. With compression the transport accepts the connection, as it
// must negotiate permessage-deflate and then read and write every frame.

// websocketGUID is RFC 6455's constant for the Sec-WebSocket-Accept header.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// upgrade completes the handshake for c, choosing subprotocol if the client
// offered it. It returns the transport's connection, or nil when the router
// reads and writes the frames itself.
func (r *Router) upgrade(w http.ResponseWriter, req *http.Request, c *conn, subprotocol string) (*websocket.Conn, error) {
	chosen := ""
	if subprotocol != "" {
		chosen = offeredSubprotocol(req.Header, subprotocol)
		if chosen != subprotocol {
			r.log.Warn("wsroute: $connect chose a subprotocol the client did not offer", "connectionId", c.id, "subprotocol", subprotocol)
		}
	}
	if r.opts.Compression != CompressionDisabled {
		ao := &websocket.AcceptOptions{InsecureSkipVerify: true, // the origin was checked before $connect
			CompressionMode: r.opts.Compression.transport(), CompressionThreshold: r.opts.CompressionThreshold}
		if chosen != "" {
			ao.Subprotocols = []string{chosen}
		}
		return websocket.Accept(&hijackWriter{ResponseWriter: w, wrap: c.wrapWire}, req, ao)
	}

	if !canHijack(w) {
		http.Error(w, http.StatusText(http.StatusNotImplemented), http.StatusNotImplemented)
		return nil, errors.New("wsroute: the http.ResponseWriter cannot hijack the connection")
	}
	h := w.Header()
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Accept", acceptKey(req.Header.Get("Sec-WebSocket-Key")))
	if chosen != "" {
		h.Set("Sec-WebSocket-Protocol", chosen)
	}
	w.WriteHeader(http.StatusSwitchingProtocols) // sent by the hijack
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	// net/http's 4 KiB buffers would stay with the connection as long as
	// it lives: only what the client sent after the request is kept.
	wrapHijacked(nc, brw.Reader, c.wrapWire)
	c.wire.br = bufio.NewReaderSize(&c.wire, readBuffer)
	return nil, nil
}

// wrapHijacked wraps the socket net/http hijacked: what the client sent
// after the request, which waits in br, goes through the wrapper first,
// ahead of the socket.
func wrapHijacked(nc net.Conn, br *bufio.Reader, wrap func(nc net.Conn, pre []byte) net.Conn) net.Conn {
	pre, _ := br.Peek(br.Buffered())
	return wrap(nc, bytes.Clone(pre))
}

// acceptKey returns the Sec-WebSocket-Accept value for a client's
// Sec-WebSocket-Key (RFC 6455 §4.2.2).
func acceptKey(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// offeredSubprotocol returns the client's spelling of subprotocol among the
// subprotocols it offered, compared without case, or "" when it did not
// offer it.
func offeredSubprotocol(h http.Header, subprotocol string) string {
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); strings.EqualFold(t, subprotocol) {
				return t
			}
		}
	}
	return ""
}

// canHijack reports whether w, or a ResponseWriter it wraps, can hijack
// its connection.
func canHijack(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case http.Hijacker:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
}

// readBuffer is the size of the buffer the connection's frames are read
// through: one read of the socket brings the headers and payloads of
// several small frames into it, and a payload larger than the buffer is
// read straight into the message's own buffer.
const readBuffer = 1 << 10

// hijackWriter hands the transport, when websocket.Accept hijacks the
// connection, the connection's wireConn in place of the socket, and a read
// buffer of readBuffer bytes in place of net/http's 4 KiB one.
type hijackWriter struct {
	http.ResponseWriter
	wrap func(nc net.Conn, pre []byte) net.Conn // the connection the transport reads
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return c, brw, err
	}
	c = wrapHijacked(c, brw.Reader, w.wrap)
	// The transport writes through the wrapper too, so that its frames
	// never interleave with another writer's. net/http hands over an empty
	// writer; flush it all the same before the switch.
	if err = brw.Writer.Flush(); err != nil {
		return c, brw, err
	}
	brw.Writer.Reset(c)
	return c, bufio.NewReadWriter(bufio.NewReaderSize(c, readBuffer), brw.Writer), nil
}

func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
