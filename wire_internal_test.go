package wsroute

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/coder/websocket"
)

// piecesConn is a client socket that delivers b in reads of at most step
// bytes, then io.EOF.
type piecesConn struct {
	net.Conn
	b    []byte
	step int
}

func (c *piecesConn) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.step)], c.b)
	c.b = c.b[n:]
	return n, nil
}

// wireRead is what the transport reads from a wireConn: the bytes before the
// first refusal, the refusals in the order Read returned them, and the bytes
// after the first one.
type wireRead struct {
	before, after []byte
	refusals      []frameRefusal
}

// readWire reads, as the transport would, a wireConn over b delivered in
// reads of at most step bytes, until io.EOF or a refusal that every Read
// returns from then on. It fails t if a refusal other than 1009 is not
// returned again, or if 1009 is.
func readWire(t *testing.T, b []byte, step int, limit, frameLimit int64) wireRead {
	t.Helper()
	w := newWireConn(&piecesConn{b: b, step: step}, nil, limit, frameLimit, nil)
	var r wireRead
	p := make([]byte, 5+3*step) // the transport's reads need not match the socket's
	for range 2*len(b) + 10 {
		n, err := w.Read(p)
		if len(r.refusals) == 0 {
			r.before = append(r.before, p[:n]...)
		} else {
			r.after = append(r.after, p[:n]...)
		}
		var fr *frameRefusal
		switch {
		case errors.As(err, &fr):
			if n != 0 {
				t.Fatalf("Read returned %d bytes with the refusal %v", n, fr)
			}
			r.refusals = append(r.refusals, *fr)
			if fr.code == websocket.StatusMessageTooBig {
				continue
			}
			if n, again := w.Read(p); n != 0 || !errors.Is(again, fr) {
				t.Fatalf("after the refusal %v, Read returned %d, %v", fr, n, again)
			}
			return r
		case err != nil:
			return r
		}
	}
	t.Fatalf("no end to reading %d bytes", len(b))
	return r
}

func maskedFrame(first byte, payload []byte) []byte {
	b := []byte{first}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := []byte{1, 2, 3, 4}
	b = append(b, key...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// closeFramesIn checks that b is a run of whole client close frames, each
// found in stream in the same order, and returns how many there are.
func closeFramesIn(t *testing.T, b, stream []byte) int {
	t.Helper()
	frames := 0
	for len(b) > 0 {
		if len(b) < 6 || b[0] != 0x88 || b[1]&0x80 == 0 || int(b[1]&0x7f) > len(b)-6 {
			t.Fatalf("not a whole masked close frame: % x", b[:min(len(b), 16)])
		}
		f := b[:6+int(b[1]&0x7f)]
		i := bytes.Index(stream, f)
		if i < 0 {
			t.Fatalf("close frame % x is not in the stream after the refusal", f)
		}
		stream = stream[i+len(f):]
		b = b[len(f):]
		frames++
	}
	return frames
}

// FuzzFrameScanner: however the bytes are cut into reads, a wireConn refuses
// the same frames for the same reasons, and never releases all of the frame
// it refuses; a stream it accepts is released whole. After a protocol
// violation every Read returns it; after a size refusal (1009) Read returns
// it once, then only the whole close frames of what follows, the same
// however the bytes are cut.
func FuzzFrameScanner(f *testing.F) {
	valid := append(maskedFrame(0x81, []byte(`{"action":"echo"}`)), maskedFrame(0x89, []byte("ping"))...)
	valid = append(valid, maskedFrame(0x01, []byte("frag"))...)
	valid = append(valid, maskedFrame(0x8a, nil)...)
	valid = append(valid, maskedFrame(0x80, []byte("ment"))...)
	valid = append(valid, maskedFrame(0x88, append([]byte{0x03, 0xe8}, "bye"...))...)
	f.Add(valid, uint8(1), uint16(0))
	f.Add(valid, uint8(7), uint16(0))
	f.Add(valid, uint8(3), uint16(5)) // "frag" and "ment" pass, the first frame does not
	f.Add(append(valid[:20], maskedFrame(0x88, append([]byte{0x03, 0xe8}, 0xff))...), uint8(3), uint16(0))
	f.Add(maskedFrame(0x81, make([]byte, 1001)), uint8(5), uint16(0))
	f.Add([]byte{0x81, 0x02, 'h', 'i'}, uint8(1), uint16(0))
	f.Add(maskedFrame(0xc1, []byte("x")), uint8(2), uint16(0))
	f.Add(maskedFrame(0x88, []byte{0x03, 0xe7}), uint8(1), uint16(0))
	// A message over the limit written whole, pings and a close after it.
	tooBig := append(maskedFrame(0x01, make([]byte, 700)), maskedFrame(0x89, []byte("mid"))...)
	tooBig = append(tooBig, maskedFrame(0x80, make([]byte, 400))...)
	tooBig = append(tooBig, maskedFrame(0x82, []byte("next message"))...)
	tooBig = append(tooBig, maskedFrame(0x88, append([]byte{0x03, 0xe8}, "bye"...))...)
	f.Add(tooBig, uint8(9), uint16(0))
	f.Add(tooBig, uint8(200), uint16(600))
	// ... then a violation, which is still refused.
	f.Add(append(tooBig[:len(tooBig)-11], maskedFrame(0x88, append([]byte{0x03, 0xe8}, 0xff))...), uint8(4), uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, step uint8, frameLimit uint16) {
		const limit = 1000
		whole := readWire(t, b, len(b)+1, limit, int64(frameLimit))
		cutStep := int(step%32) + 1
		cut := readWire(t, b, cutStep, limit, int64(frameLimit))
		switch {
		case !equalRefusals(whole.refusals, cut.refusals):
			t.Fatalf("whole: %v, in pieces of %d: %v", whole.refusals, cutStep, cut.refusals)
		case len(whole.refusals) == 0:
			if !bytes.Equal(whole.before, b) || !bytes.Equal(cut.before, b) {
				t.Fatalf("accepted, but released %d and %d of %d bytes", len(whole.before), len(cut.before), len(b))
			}
			return
		case !bytes.HasPrefix(b, cut.before) || !bytes.HasPrefix(cut.before, whole.before) || len(cut.before) >= len(b):
			t.Fatalf("refused, released %d whole and %d in pieces of %d bytes", len(whole.before), len(cut.before), len(b))
		case !bytes.Equal(whole.after, cut.after):
			t.Fatalf("after the refusal, released % x whole and % x in pieces", whole.after, cut.after)
		}
		if whole.refusals[0].code != websocket.StatusMessageTooBig {
			if len(whole.refusals) != 1 || len(whole.after) != 0 {
				t.Fatalf("after the protocol violation %v, released %d bytes and refused %v", whole.refusals[0], len(whole.after), whole.refusals[1:])
			}
			return
		}
		if len(whole.refusals) > 2 || len(whole.refusals) == 2 && whole.refusals[1].code == websocket.StatusMessageTooBig {
			t.Fatalf("refusals after 1009: %v", whole.refusals)
		}
		closeFramesIn(t, whole.after, b[len(whole.before):])
	})
}

func equalRefusals(a, b []frameRefusal) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFrameScannerAcceptsValidStreams(t *testing.T) {
	var b []byte
	b = append(b, maskedFrame(0x81, []byte(`{"action":"echo"}`))...)
	b = append(b, maskedFrame(0x02, make([]byte, 500))...)
	b = append(b, maskedFrame(0x89, []byte("mid-message ping"))...)
	b = append(b, maskedFrame(0x80, make([]byte, 500))...) // 1000 bytes in all: the limit
	b = append(b, maskedFrame(0x82, make([]byte, 70000/100))...)
	b = append(b, maskedFrame(0x88, append([]byte{0x0f, 0xa0}, "au revoir ü"...))...)
	for step := 1; step <= len(b); step += 13 {
		r := readWire(t, b, step, 1000, 0)
		if len(r.refusals) > 0 || !bytes.Equal(r.before, b) {
			t.Fatalf("pieces of %d: released %d of %d, refused: %v", step, len(r.before), len(b), r.refusals)
		}
	}
}

// TestWireDropsAfterSizeRefusal: after a message refused for its size, the
// transport reads the refusal once, then only the client's close frame, so
// that its close handshake completes while the client writes the refused
// message to its end; the data frames and the ping are dropped.
func TestWireDropsAfterSizeRefusal(t *testing.T) {
	ok := maskedFrame(0x81, []byte(`{"action":"echo"}`))
	ping := maskedFrame(0x89, []byte("mid-message ping"))
	closing := maskedFrame(0x88, append([]byte{0x03, 0xe8}, "bye"...))
	for _, tc := range []struct {
		name       string
		frames     [][]byte // the message refused for its size
		at         int      // which of its frames is refused
		frameLimit int64
	}{
		{"one frame over the message limit", [][]byte{maskedFrame(0x81, make([]byte, 2000))}, 0, 0},
		{"fragments over the message limit", [][]byte{maskedFrame(0x01, make([]byte, 600)), maskedFrame(0x00, make([]byte, 401)), maskedFrame(0x80, make([]byte, 9))}, 1, 0},
		{"a frame over the frame limit", [][]byte{maskedFrame(0x01, make([]byte, 100)), maskedFrame(0x00, make([]byte, 101)), maskedFrame(0x80, nil)}, 1, 100},
		{"a 64-bit length", [][]byte{maskedFrame(0x82, make([]byte, 70000))}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := append([]byte(nil), ok...)
			for i, f := range tc.frames {
				stream = append(stream, f...)
				if i == tc.at {
					stream = append(stream, ping...) // between fragments, or after the message
				}
			}
			stream = append(stream, maskedFrame(0x81, []byte("a later message"))...)
			stream = append(stream, closing...)
			start := len(ok)
			for _, f := range tc.frames[:tc.at] {
				start += len(f)
			}
			end := start + len(tc.frames[tc.at])
			for _, step := range []int{1, 2, 5, 13, 100, 4096, len(stream)} {
				r := readWire(t, stream, step, 1000, tc.frameLimit)
				want := []frameRefusal{{websocket.StatusMessageTooBig, reasonTooBig}}
				if !equalRefusals(r.refusals, want) {
					t.Fatalf("pieces of %d: refusals %v, want %v", step, r.refusals, want)
				}
				// What comes before the refused frame, and perhaps the first bytes of
				// its header.
				if !bytes.HasPrefix(stream, r.before) || len(r.before) < start || len(r.before) >= end {
					t.Fatalf("pieces of %d: released %d bytes before the refusal; the refused frame is bytes %d to %d", step, len(r.before), start, end)
				}
				if !bytes.Equal(r.after, closing) {
					t.Fatalf("pieces of %d: after the refusal, released\n% x\nwant the close frame\n% x", step, r.after, closing)
				}
			}
		})
	}
}

// TestFrameScannerSizeDoesNotOverflow: a fragment announcing 2^63-1 bytes
// after others is refused for the message's size; the sum of the sizes
// would overflow.
func TestFrameScannerSizeDoesNotOverflow(t *testing.T) {
	stream := maskedFrame(0x01, make([]byte, 10))
	stream = append(stream, 0x80, 0x80|127)
	stream = binary.BigEndian.AppendUint64(stream, 1<<63-1)
	stream = append(stream, 1, 2, 3, 4)
	r := readWire(t, stream, len(stream), 1000, 0)
	if want := []frameRefusal{{websocket.StatusMessageTooBig, reasonTooBig}}; !equalRefusals(r.refusals, want) {
		t.Fatalf("refusals %v, want %v", r.refusals, want)
	}
}
