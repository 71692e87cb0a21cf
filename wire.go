package wsroute

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// The read side of a connection, as it comes off the wire.
//
// The frame reader (the router's own without compression, wireread.go; the
// transport's with it) reads the hijacked socket through a wireConn, which
// follows the frames the client sends as they arrive. It is where the
// router checks inbound frames, and does what the transport's reader does
// not do, or does too late:
//
//   - It refuses the first frame that breaks RFC 6455 before the reader
//     sees it whole: the router then closes with 1002 and a reason naming the
//     violation, reports the same to $disconnect, and closes the socket. The
//     transport would send 1002 itself for most violations but report a bare
//     error, and for some (an unmasked frame, a 64-bit length with its top bit
//     set) close the socket without a close frame.
//   - It refuses a close frame whose reason is not UTF-8 (1007), which the
//     transport would accept and echo.
//   - It refuses a message with 1009 as soon as its frame headers announce
//     more than MaxMessageSize, or a data frame over Quotas.FrameSize,
//     instead of when the bytes have arrived; and it counts the bytes that
//     arrive, so that a client uploading a large message slowly is alive
//     although it cannot answer a ping before the message ends.
//
// The frame that breaks a rule is never handed to the reader whole: the
// bytes before it are, and the next read returns the refusal. After a
// protocol violation (1002, 1007) the stream cannot be trusted, and every
// read returns the refusal: the close handshake fails at once and the socket
// is closed. After a size refusal (1009) the stream is still sound, and the
// client, which may be writing the refused message whole, must be able to
// finish writing it and read the close frame: the refusal is returned once,
// and from then on every frame is read and checked, and only close frames
// are handed on, so that the close handshake reads the client's close
// frame. The bytes of data frames (the rest of the refused frame, its
// continuations, later messages) are dropped, and so are pings and pongs:
// the router is closing by then, and no pong may follow its close frame
// (the transport, with compression, would end its handshake at a ping it
// cannot answer, with the client's bytes unread, and the socket would be
// reset). CloseTimeout bounds that handshake, as any close
// the router starts.

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
	pre *bytes.Reader // what the client sent right after the handshake request, if anything

	bytesIn   atomic.Uint64 // bytes received so far
	msgStart  atomic.Int64  // unix nanoseconds the message under way began; 0 between messages
	onPartial *conn         // told once of each message whose bytes span reads; may be nil

	scan    frameScanner
	refused *frameRefusal // a protocol violation: every Read returns it
	tooBig  *frameRefusal // a size refusal the next Read returns, once
	drop    *wireDrop     // after a size refusal has been returned: Read returns close frames only (see readDropping)

	// The router's own reads and writes (wireread.go, wirewrite.go).
	br        *bufio.Reader // what the reader reads frames from
	wmu       sync.Mutex    // held for each frame written
	rawData   bool          // the router reads and writes frames itself; set before the first read or write
	closeSent bool          // a close frame has been written; guarded by wmu
}

// wireDrop is the state of a wireConn that drops data frames.
type wireDrop struct {
	rest []byte // bytes of the refusing read after the refused header, not yet followed
	rerr error  // the error of the refusing read, returned once rest is followed
	buf  []byte // what readDropping reads into
	out  []byte // close frames' bytes not yet returned
}

// dropBuffer is the size of the buffer a wireConn reads into once it drops
// data frames, which only a connection that is closing does.
const dropBuffer = 4 << 10

// newWireConn wraps nc; pre holds bytes already read from it.
func newWireConn(nc net.Conn, pre []byte, maxMessage, maxFrame int64, onPartial *conn) *wireConn {
	w := new(wireConn)
	w.init(nc, pre, maxMessage, maxFrame, onPartial)
	return w
}

func (w *wireConn) init(nc net.Conn, pre []byte, maxMessage, maxFrame int64, onPartial *conn) {
	w.Conn, w.onPartial = nc, onPartial
	if len(pre) > 0 {
		w.pre = bytes.NewReader(pre)
	}
	w.scan = frameScanner{limit: maxMessage, frameLimit: maxFrame}
}

func (w *wireConn) Read(p []byte) (int, error) {
	switch {
	case w.refused != nil:
		return 0, w.refused
	case w.tooBig != nil:
		err := w.tooBig
		w.tooBig = nil
		return 0, err
	case w.drop != nil:
		return w.readDropping(p)
	}
	n, err := w.readRaw(p)
	if n == 0 {
		return 0, err
	}
	wasInMessage := w.scan.inMessage
	keep, used, refusal := w.scan.scan(p[:n])
	if refusal != nil {
		if refusal.code == websocket.StatusMessageTooBig {
			// What follows the refused header in p is followed after the
			// refusal, by readDropping; p is the caller's, so it is copied.
			w.tooBig = refusal
			w.drop = &wireDrop{rest: bytes.Clone(p[used:n]), rerr: err}
		} else {
			w.refused = refusal
		}
		if keep > 0 {
			return keep, nil
		}
		return w.Read(p) // the refusal
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
			w.onPartial.messageSpansReads()
		}
	}
	w.scan.started = false
	return n, err
}

// readRaw reads what the client sent, from pre and then from the socket,
// and counts it.
func (w *wireConn) readRaw(p []byte) (int, error) {
	if w.pre != nil {
		n, _ := w.pre.Read(p)
		if w.pre.Len() == 0 {
			w.pre = nil
		}
		w.bytesIn.Add(uint64(n))
		return n, nil
	}
	n, err := w.Conn.Read(p)
	w.bytesIn.Add(uint64(n))
	return n, err
}

// readDropping is Read once a size refusal has been returned: the router is
// closing the connection, and the transport, which has sent its close
// frame, reads on only to find the client's. It returns the close frames
// that follow the refused frame and drops everything else, reading on while
// all it reads is dropped; the socket's deadline, which the router's close
// set to CloseTimeout, bounds that. A protocol violation among what follows
// is refused as before: every Read returns it from then on.
func (w *wireConn) readDropping(p []byte) (int, error) {
	d := w.drop
	for len(d.out) == 0 {
		if w.refused != nil {
			return 0, w.refused
		}
		raw := d.rest
		d.rest = nil
		if len(raw) == 0 {
			if d.rerr != nil {
				err := d.rerr
				d.rerr = nil
				return 0, err
			}
			if d.buf == nil {
				d.buf = make([]byte, dropBuffer)
			}
			n, err := w.readRaw(d.buf)
			if n == 0 {
				return 0, err
			}
			raw, d.rerr = d.buf[:n], err
		}
		var refusal *frameRefusal
		d.out, refusal = w.scan.drop(raw, d.out[:0])
		if refusal != nil {
			w.refused = refusal
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// frameScanner follows the frames of the client→server byte stream and checks
// each against RFC 6455 and the message size limits, without copying the
// payloads (but for a close frame's, at most 125 bytes). Until it refuses a
// message for its size it runs in scan; from then on, in drop.
type frameScanner struct {
	limit      int64 // MaxMessageSize
	frameLimit int64 // Quotas.FrameSize for data frames; 0 for none
	left       int64 // payload bytes of the current frame still to come
	size       int64 // bytes the current message's frames announced so far

	closePayload *[125]byte // the close frame's payload, unmasked; made for the first close frame
	held         []byte     // while dropping, the close frame under way, header and payload

	hdr    [14]byte
	key    [4]byte
	hdrN   uint8 // bytes of the current frame's header seen; 0 between frames
	hdrLen uint8 // the header's length, once its second byte is known
	keyPos uint8 // the mask key's byte for the next payload byte, modulo 4
	closeN uint8 // bytes of closePayload seen
	op     byte
	fin    bool

	rsv1       bool // permessage-deflate may be negotiated: RSV1 marks a compressed message
	fragmented bool // a data frame without FIN came; continuations follow
	inMessage  bool // a data message has begun and its last byte not come
	started    bool // a data message began in the bytes of the last scan
	dropping   bool // a message was refused for its size: data frames are dropped
}

// scan follows b. It returns how many bytes of b may be handed to the
// transport; at a refusal, also the refusal of the frame that begins after
// them, and how many bytes of b it followed: the refused frame's header ends
// there.
func (s *frameScanner) scan(b []byte) (keep, used int, refusal *frameRefusal) {
	frameStart := 0 // where the current frame began in b; 0 if before b
	for i := 0; i < len(b); {
		if s.hdrN == 0 && s.left == 0 {
			frameStart = i
		}
		if s.inHeader() {
			i += s.takeHeader(b[i:])
			if s.inHeader() {
				continue
			}
			if refusal := s.header(); refusal != nil {
				return frameStart, i, refusal
			}
		} else {
			i += s.takePayload(b[i:])
		}
		if s.left > 0 {
			continue
		}
		if refusal := s.endFrame(); refusal != nil {
			return frameStart, i, refusal
		}
	}
	return len(b), len(b), nil
}

// drop follows b after a size refusal. It appends to out each close frame
// that has come whole and passed its checks, header and payload, and drops
// the bytes of the other frames. It stops at the first frame that breaks
// RFC 6455 and returns its refusal.
func (s *frameScanner) drop(b, out []byte) ([]byte, *frameRefusal) {
	for i := 0; i < len(b); {
		if s.inHeader() {
			i += s.takeHeader(b[i:])
			if s.inHeader() {
				continue
			}
			if refusal := s.header(); refusal != nil {
				return out, refusal
			}
			if s.op == opClose {
				s.held = append(s.held[:0], s.hdr[:s.hdrLen]...)
			}
		} else {
			k := s.takePayload(b[i:])
			if s.op == opClose {
				s.held = append(s.held, b[i:i+k]...)
			}
			i += k
		}
		if s.left > 0 {
			continue
		}
		if refusal := s.endFrame(); refusal != nil {
			return out, refusal
		}
		if s.op == opClose {
			out = append(out, s.held...)
		}
	}
	return out, nil
}

// inHeader reports whether the current frame's header has not all come.
func (s *frameScanner) inHeader() bool { return s.hdrN < 2 || s.hdrN < s.hdrLen }

// takeHeader follows the bytes of b that belong to the current frame's
// header and returns how many there were.
func (s *frameScanner) takeHeader(b []byte) int {
	i := 0
	for i < len(b) && s.inHeader() {
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
	}
	return i
}

// takePayload follows the bytes of b that belong to the current frame's
// payload and returns how many there were.
func (s *frameScanner) takePayload(b []byte) int {
	k := min(int64(len(b)), s.left)
	if s.op == opClose {
		for _, c := range b[:k] {
			s.closePayload[s.closeN] = c ^ s.key[s.keyPos&3]
			s.closeN++
			s.keyPos++
		}
	}
	s.left -= k
	return int(k)
}

// header checks a complete frame header. Once the scanner drops data
// frames, it refuses none for its size.
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
		if s.op == opClose && s.closePayload == nil {
			s.closePayload = new([125]byte)
		}
		return nil
	}
	if s.op != opContinuation {
		s.size = 0
		s.inMessage = true
		s.started = true
	}
	s.fragmented = !s.fin
	if s.dropping {
		return nil
	}
	// s.size <= s.limit here, so the difference does not overflow as the
	// sum could. A refused frame announces at least one byte.
	if s.left > s.limit-s.size || s.frameLimit > 0 && s.left > s.frameLimit {
		s.dropping = true
		return &frameRefusal{websocket.StatusMessageTooBig, reasonTooBig}
	}
	s.size += s.left
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
	c.wire.init(nc, pre, c.r.opts.MaxMessageSize, c.r.quotas.frameLimit(), c)
	c.wire.scan.rsv1 = c.r.opts.Compression != CompressionDisabled
	c.wire.rawData = c.r.opts.Compression == CompressionDisabled
	return &c.wire
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
	if c.wire.msgStart.Load() == 0 {
		// A message that begins from now on begins after this: its own
		// start is when its clock starts, and no clock needs reading here.
		c.readSince.Store(1)
		return
	}
	c.readSince.Store(time.Now().UnixNano())
	c.messageSpansReads()
}

// messageDeadline returns when the message under way must have come whole,
// or the zero time. The time a handler of the connection runs does not count:
// the clock starts when the message began, or when the read loop came back
// to read it, whichever is later, and stops while the read loop does not read.
func (c *conn) messageDeadline() time.Time {
	d := c.r.messageTimeout()
	if d <= 0 || c.wire.Conn == nil {
		return time.Time{}
	}
	start, reading := c.wire.msgStart.Load(), c.readSince.Load()
	if start == 0 || reading == 0 {
		return time.Time{}
	}
	return time.Unix(0, max(start, reading)).Add(d)
}
