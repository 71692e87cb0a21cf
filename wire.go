package wsroute

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// The read side of a connection, as it comes off the wire.
//
// The transport reads the hijacked socket through a wireConn, which follows
// the frames the client sends as they arrive. It does three things the
// transport does not do, or does too late:
//
//   - It refuses the first frame that breaks RFC 6455 before the transport
//     sees it whole: the router then closes with 1002 and a reason naming the
//     violation, reports the same to $disconnect, and closes the socket. The
//     transport would send 1002 itself for most violations but report a bare
//     error, and for some (an unmasked frame, a 64-bit length with its top bit
//     set) close the socket without a close frame.
//   - It refuses a close frame whose reason is not UTF-8 (1007), which the
//     transport would accept and echo.
//   - It refuses a message as soon as its frame headers announce more than
//     MaxMessageSize (1009), instead of when the bytes have arrived; and it
//     counts the bytes that arrive, so that a client uploading a large message
//     slowly is alive although it cannot answer a ping before the message ends.
//
// The frame that breaks a rule is never handed to the transport whole: the
// bytes before it are, and the next read returns the refusal.

// Close reasons of the frames the read side refuses, and of a message that
// takes too long.
const (
	reasonBadCloseUTF8 = "Close frame reason is not valid UTF-8"
	reasonSlowMessage  = "Message took too long"
)

// defaultMessageTimeout is Options.MessageTimeout's default.
const defaultMessageTimeout = time.Minute

// messageTimeout returns how long one inbound message may take; 0 is no limit.
func (r *Router) messageTimeout() time.Duration {
	switch d := r.opts.MessageTimeout; {
	case d == 0:
		return defaultMessageTimeout
	case d < 0:
		return 0
	default:
		return d
	}
}

// frameRefusal is the error a wireConn returns in place of a frame that it
// refused: the router closes the connection with its code and reason.
type frameRefusal struct {
	code   websocket.StatusCode
	reason string
}

func (e *frameRefusal) Error() string { return "wsroute: frame refused: " + e.reason }

func protocolError(format string, args ...any) *frameRefusal {
	return &frameRefusal{websocket.StatusProtocolError, fmt.Sprintf(format, args...)}
}

// Opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// wireConn is the hijacked net.Conn that the transport reads and writes. The
// transport's read lock lets one goroutine at a time call Read: the read
// loop, or the writer waiting for the client's close frame.
type wireConn struct {
	net.Conn
	pre []byte // what the client sent right after the handshake request

	bytesIn   atomic.Uint64 // bytes received so far
	msgStart  atomic.Int64  // unix nanoseconds the message under way began; 0 between messages
	onPartial func()        // called once for each message whose bytes span reads

	refused error // once set, every Read returns it
	scan    frameScanner
}

// newWireConn wraps nc; pre holds bytes already read from it.
func newWireConn(nc net.Conn, pre []byte, maxMessage int64, onPartial func()) *wireConn {
	return &wireConn{Conn: nc, pre: pre, onPartial: onPartial, scan: frameScanner{limit: maxMessage}}
}

func (w *wireConn) Read(p []byte) (int, error) {
	if w.refused != nil {
		return 0, w.refused
	}
	var (
		n   int
		err error
	)
	if len(w.pre) > 0 {
		n = copy(p, w.pre)
		w.pre = w.pre[n:]
	} else {
		n, err = w.Conn.Read(p)
	}
	if n == 0 {
		return 0, err
	}
	w.bytesIn.Add(uint64(n))
	wasInMessage := w.scan.inMessage
	keep, refusal := w.scan.scan(p[:n])
	if refusal != nil {
		w.refused = refusal
		if keep == 0 {
			return 0, refusal
		}
		return keep, nil
	}
	switch {
	case !w.scan.inMessage:
		if wasInMessage || w.scan.started {
			w.msgStart.Store(0)
		}
	case !wasInMessage || w.scan.started:
		// A message began in these bytes and goes on past them.
		w.msgStart.Store(time.Now().UnixNano())
		if w.onPartial != nil {
			w.onPartial()
		}
	}
	w.scan.started = false
	return n, err
}

// frameScanner follows the frames of the client→server byte stream and checks
// each against RFC 6455 and the message size limit, without copying the
// payloads (but for a close frame's, at most 125 bytes).
type frameScanner struct {
	limit int64 // MaxMessageSize
	rsv1  bool  // permessage-deflate may be negotiated: RSV1 marks a compressed message

	hdr    [14]byte
	hdrN   int   // bytes of the current frame's header seen; 0 between frames
	hdrLen int   // the header's length, once its second byte is known
	left   int64 // payload bytes of the current frame still to come
	op     byte
	fin    bool
	key    [4]byte
	keyPos int

	fragmented bool  // a data frame without FIN came; continuations follow
	size       int64 // bytes the current message's frames announced so far
	inMessage  bool  // a data message has begun and its last byte not come
	started    bool  // a data message began in the bytes of the last scan

	closePayload [125]byte
	closeN       int
}

// scan follows b. It returns how many bytes of b may be handed to the
// transport, and the refusal of the frame that begins after them, if any.
func (s *frameScanner) scan(b []byte) (int, *frameRefusal) {
	frameStart := 0 // where the current frame began in b; 0 if before b
	i := 0
	for i < len(b) {
		if s.hdrN == 0 && s.left == 0 {
			frameStart = i
		}
		if s.hdrN < 2 || s.hdrN < s.hdrLen {
			s.hdr[s.hdrN] = b[i]
			s.hdrN++
			i++
			if s.hdrN == 2 {
				s.hdrLen = 2
				switch s.hdr[1] & 0x7f {
				case 126:
					s.hdrLen += 2
				case 127:
					s.hdrLen += 8
				}
				if s.hdr[1]&0x80 != 0 {
					s.hdrLen += 4
				}
			}
			if s.hdrN < 2 || s.hdrN < s.hdrLen {
				continue
			}
			if refusal := s.header(); refusal != nil {
				return frameStart, refusal
			}
			if s.left > 0 {
				continue
			}
		} else {
			k := min(int64(len(b)-i), s.left)
			if s.op == opClose {
				for _, c := range b[i : i+int(k)] {
					s.closePayload[s.closeN] = c ^ s.key[s.keyPos&3]
					s.closeN++
					s.keyPos++
				}
			}
			s.left -= k
			i += int(k)
			if s.left > 0 {
				continue
			}
		}
		if refusal := s.endFrame(); refusal != nil {
			return frameStart, refusal
		}
	}
	return len(b), nil
}

// header checks a complete frame header.
func (s *frameScanner) header() *frameRefusal {
	h := s.hdr[:s.hdrLen]
	s.fin = h[0]&0x80 != 0
	s.op = h[0] & 0x0f
	masked := h[1]&0x80 != 0
	var n uint64
	switch n = uint64(h[1] & 0x7f); n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		n = binary.BigEndian.Uint64(h[2:10])
	}
	if masked {
		copy(s.key[:], h[len(h)-4:])
	}
	s.keyPos = 0
	control := s.op&0x8 != 0
	switch {
	case h[0]&s.reservedBits() != 0:
		return protocolError("Reserved bits set")
	case s.op > opBinary && s.op < opClose || s.op > opPong:
		return protocolError("Reserved opcode %d", s.op)
	case !masked:
		return protocolError("Client frame not masked")
	case n > 1<<63-1:
		return protocolError("Frame length over 2^63-1")
	case control && !s.fin:
		return protocolError("Fragmented control frame")
	case control && n > 125:
		return protocolError("Control frame longer than 125 bytes")
	case s.op == opContinuation && !s.fragmented:
		return protocolError("Continuation frame without a message to continue")
	case (s.op == opText || s.op == opBinary) && s.fragmented:
		return protocolError("New message before the previous one ended")
	}
	s.left = int64(n)
	if control {
		s.closeN = 0
		return nil
	}
	if s.op != opContinuation {
		s.size = 0
		s.inMessage = true
		s.started = true
	}
	s.size += s.left
	if s.size > s.limit {
		return &frameRefusal{websocket.StatusMessageTooBig, reasonTooBig}
	}
	s.fragmented = !s.fin
	return nil
}

// reservedBits returns the header bits of the current frame that must be 0:
// RSV1 may mark the first frame of a compressed message (RFC 7692 §6) when
// compression is on; the transport refuses it if compression was not
// negotiated.
func (s *frameScanner) reservedBits() byte {
	if s.rsv1 && (s.op == opText || s.op == opBinary) {
		return 0x30
	}
	return 0x70
}

// endFrame runs when the current frame's last byte has come.
func (s *frameScanner) endFrame() *frameRefusal {
	s.hdrN, s.hdrLen = 0, 0
	switch {
	case s.op == opClose:
		p := s.closePayload[:s.closeN]
		if len(p) == 0 {
			return nil
		}
		if len(p) == 1 {
			return protocolError("Close frame payload of 1 byte")
		}
		if code := websocket.StatusCode(binary.BigEndian.Uint16(p)); !validCloseCode(code) {
			return protocolError("Invalid close code %d", code)
		}
		if !utf8.Valid(p[2:]) {
			return &frameRefusal{websocket.StatusInvalidFramePayloadData, reasonBadCloseUTF8}
		}
	case s.op&0x8 == 0 && s.fin:
		s.inMessage = false
	}
	return nil
}

// validCloseCode reports whether a client may send code in a close frame
// (RFC 6455 §7.4): a code defined for use on the wire, or 3000–4999.
func validCloseCode(code websocket.StatusCode) bool {
	switch {
	case code >= 3000 && code <= 4999:
		return true
	case code < 1000 || code > 1014:
		return false
	}
	return code != 1004 && code != 1005 && code != 1006
}

// wrapWire makes the connection's wireConn around the socket the handshake
// hijacked; pre holds what the client sent after the request.
func (c *conn) wrapWire(nc net.Conn, pre []byte) net.Conn {
	c.wire = newWireConn(nc, pre, c.r.opts.MaxMessageSize, c.messageSpansReads)
	c.wire.scan.rsv1 = c.r.opts.Compression != CompressionDisabled
	return c.wire
}

// refusedFrame maps the error that ended the read loop to the close the
// router starts for a frame the read side refused.
func (c *conn) refusedFrame(err error) (websocket.StatusCode, string, bool) {
	var fr *frameRefusal
	if !errors.As(err, &fr) {
		return 0, "", false
	}
	c.r.log.Info("wsroute: frame refused", "connectionId", c.id, "code", int(fr.code), "reason", fr.reason)
	c.close(fr.code, fr.reason)
	return fr.code, fr.reason, true
}

// messageSpansReads runs on the read loop when a message has begun and its
// bytes have not all come: the timer must watch its time limit.
func (c *conn) messageSpansReads() {
	if c.r.messageTimeout() <= 0 {
		return
	}
	c.mu.Lock()
	if c.state == stateOpen {
		c.armTimerLocked(time.Now())
	}
	c.mu.Unlock()
}

// readResumes runs when the read loop starts to read the next message,
// which may have begun to arrive while a handler ran.
func (c *conn) readResumes() {
	c.readSince.Store(time.Now().UnixNano())
	if c.wire.msgStart.Load() != 0 {
		c.messageSpansReads()
	}
}

// messageDeadline returns when the message under way must have come whole,
// or the zero time. The time a handler of the connection runs does not count:
// the clock starts when the message began, or when the read loop came back
// to read it, whichever is later, and stops while the read loop does not read.
func (c *conn) messageDeadline() time.Time {
	d := c.r.messageTimeout()
	if d <= 0 || c.wire == nil {
		return time.Time{}
	}
	start, reading := c.wire.msgStart.Load(), c.readSince.Load()
	if start == 0 || reading == 0 {
		return time.Time{}
	}
	return time.Unix(0, max(start, reading)).Add(d)
}
