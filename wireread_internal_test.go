package wsroute

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/coder/websocket"
)

// scriptConn is a client socket that delivers b in reads of at most step
// bytes, then io.EOF, and keeps what the server writes.
type scriptConn struct {
	piecesConn
	wrote bytes.Buffer
}

func (c *scriptConn) Write(p []byte) (int, error) { return c.wrote.Write(p) }

// readerRun is what the router's reader made of a byte stream: the messages
// (a "b" or "t" and the payload), the bytes it wrote back, and the error
// that ended it after any size refusal.
type readerRun struct {
	messages []string
	wrote    []byte
	end      error
	tooBig   bool
}

// runReader reads b, delivered in reads of at most step bytes, with the
// connection's reader over a buffer of bufSize bytes, as the read loop does:
// message after message until an error, reading on after a size refusal as
// the router does once it has begun its close.
func runReader(t *testing.T, b []byte, step, bufSize int, limit int64) readerRun {
	t.Helper()
	sc := &scriptConn{piecesConn: piecesConn{b: b, step: step}}
	c := &conn{}
	c.wire.init(sc, nil, limit, 0, nil)
	c.wire.rawData = true
	c.wire.br = bufio.NewReaderSize(&c.wire, bufSize)
	var run readerRun
	for range len(b) + 3 {
		var buf bytes.Buffer
		isBinary, err := c.readMessage(&buf)
		var fr *frameRefusal
		switch {
		case err == nil:
			kind := "t"
			if isBinary {
				kind = "b"
			}
			run.messages = append(run.messages, kind+buf.String())
			continue
		case errors.As(err, &fr) && fr.code == websocket.StatusMessageTooBig && !run.tooBig:
			run.tooBig = true
			c.mu.Lock()
			c.code = fr.code // the router's close has begun: no echo
			c.mu.Unlock()
			_, _ = c.wire.br.Discard(c.wire.br.Buffered())
			continue
		}
		run.end = err
		run.wrote = sc.wrote.Bytes()
		return run
	}
	t.Fatalf("no end to reading %d bytes", len(b))
	return run
}

// decodeAccepted is the reference: it decodes the frames the wireConn
// accepted, plainly, one at a time, into the messages, the bytes the
// server answers with (a pong for each ping, the close frame echoed) and the
// close the client sent, if any.
func decodeAccepted(b []byte) (messages []string, answers []byte, closing *websocket.CloseError) {
	var msg []byte
	kind := ""
	for len(b) >= 2 {
		n := uint64(b[1] & 0x7f)
		h := 2
		switch n {
		case 126:
			if len(b) < 4 {
				return
			}
			n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				return
			}
			n, h = binary.BigEndian.Uint64(b[2:]), 10
		}
		if uint64(len(b)) < uint64(h)+4+n {
			return // the start of the refused frame
		}
		key := b[h : h+4]
		p := make([]byte, n)
		for i := range p {
			p[i] = b[h+4+i] ^ key[i%4]
		}
		op := b[0] & 0x0f
		fin := b[0]&0x80 != 0
		b = b[h+4+int(n):]
		switch op {
		case opPing:
			answers = append(append(answers, 0x8a, byte(len(p))), p...)
		case opPong:
		case opClose:
			ce := websocket.CloseError{Code: websocket.StatusNoStatusRcvd}
			if len(p) >= 2 {
				ce = websocket.CloseError{Code: websocket.StatusCode(binary.BigEndian.Uint16(p)), Reason: string(p[2:])}
			}
			answers = append(append(answers, 0x88, byte(len(p))), p...)
			return messages, answers, &ce
		default:
			if op != opContinuation {
				kind = "t"
				if op == opBinary {
					kind = "b"
				}
				msg = msg[:0]
			}
			msg = append(msg, p...)
			if fin {
				messages = append(messages, kind+string(msg))
			}
		}
	}
	return messages, answers, closing
}

// FuzzFrameReader: whatever the bytes and however they are cut into reads,
// the router's reader yields exactly the messages of the frames the
// wireConn accepts, answers each ping with its payload and the client's
// close frame with the same frame, and ends with the client's close, the
// wireConn's refusal, or the end of the stream.
func FuzzFrameReader(f *testing.F) {
	valid := append(maskedFrame(0x81, []byte(`{"action":"echo"}`)), maskedFrame(0x89, []byte("ping"))...)
	valid = append(valid, maskedFrame(0x01, []byte("frag"))...)
	valid = append(valid, maskedFrame(0x8a, nil)...)
	valid = append(valid, maskedFrame(0x09, nil)...) // a fragmented ping: refused
	f.Add(valid, uint8(1), false)
	f.Add(valid[:len(valid)-6], uint8(3), true)
	whole := append(append([]byte(nil), valid[:len(valid)-6]...), maskedFrame(0x80, make([]byte, 300))...)
	whole = append(whole, maskedFrame(0x82, make([]byte, 200))...)
	whole = append(whole, maskedFrame(0x88, append([]byte{0x03, 0xe8}, "bye"...))...)
	f.Add(whole, uint8(7), false)
	f.Add(append(maskedFrame(0x81, make([]byte, 1200)), maskedFrame(0x88, nil)...), uint8(5), true)
	f.Add(append(maskedFrame(0x01, make([]byte, 600)), maskedFrame(0x80, make([]byte, 600))...), uint8(200), false)
	f.Fuzz(func(t *testing.T, b []byte, step uint8, smallBuffer bool) {
		const limit = 1000
		if len(b) > 1<<16 {
			return
		}
		cut := int(step%64) + 1
		bufSize := readBuffer
		if smallBuffer {
			bufSize = 128 // a control frame's payload still fits
		}
		accepted := readWire(t, b, len(b)+1, limit, 0)
		run := runReader(t, b, cut, bufSize, limit)
		wantMessages, wantAnswers, wantClose := decodeAccepted(accepted.before)
		if run.tooBig {
			// Before the refusal the answers are the same; after it only
			// the close frames come through, and none is echoed.
			if wantClose == nil {
				_, _, wantClose = decodeAccepted(accepted.after)
			}
		}
		if got, want := fmt.Sprintf("%q", run.messages), fmt.Sprintf("%q", wantMessages); got != want {
			t.Fatalf("in reads of %d: messages %s, want %s", cut, got, want)
		}
		if !bytes.Equal(run.wrote, wantAnswers) {
			t.Fatalf("in reads of %d: answered\n% x\nwant\n% x", cut, run.wrote, wantAnswers)
		}
		var ce websocket.CloseError
		switch {
		case wantClose != nil:
			if !errors.As(run.end, &ce) || ce != *wantClose {
				t.Fatalf("in reads of %d: ended with %v, want the client's close %v", cut, run.end, *wantClose)
			}
		case len(accepted.refusals) > 0 && !run.tooBig:
			if run.end == nil || run.end.Error() != accepted.refusals[0].Error() {
				t.Fatalf("in reads of %d: ended with %v, want the refusal %v", cut, run.end, accepted.refusals[0])
			}
		case errors.As(run.end, &ce):
			t.Fatalf("in reads of %d: ended with a close %v that the stream does not have", cut, ce)
		}
	})
}
