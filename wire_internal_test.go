package wsroute

import (
	"encoding/binary"
	"testing"
)

// scanAll scans b in pieces of at most step bytes, as reads would deliver
// it, and returns how many bytes were released and the refusal, if any.
func scanAll(b []byte, step int) (int, *frameRefusal) {
	s := frameScanner{limit: 1000}
	released := 0
	for len(b) > 0 {
		k := min(step, len(b))
		keep, refusal := s.scan(b[:k])
		released += keep
		if refusal != nil {
			return released, refusal
		}
		b = b[k:]
	}
	return released, nil
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

// FuzzFrameScanner: however the bytes are cut into reads, the scanner
// refuses the same frame for the same reason, and never releases all of the
// frame it refuses; a stream it accepts is released whole.
func FuzzFrameScanner(f *testing.F) {
	valid := append(maskedFrame(0x81, []byte(`{"action":"echo"}`)), maskedFrame(0x89, []byte("ping"))...)
	valid = append(valid, maskedFrame(0x01, []byte("frag"))...)
	valid = append(valid, maskedFrame(0x8a, nil)...)
	valid = append(valid, maskedFrame(0x80, []byte("ment"))...)
	valid = append(valid, maskedFrame(0x88, append([]byte{0x03, 0xe8}, "bye"...))...)
	f.Add(valid, uint8(1))
	f.Add(valid, uint8(7))
	f.Add(append(valid[:20], maskedFrame(0x88, append([]byte{0x03, 0xe8}, 0xff))...), uint8(3))
	f.Add(maskedFrame(0x81, make([]byte, 1001)), uint8(5))
	f.Add([]byte{0x81, 0x02, 'h', 'i'}, uint8(1))
	f.Add(maskedFrame(0xc1, []byte("x")), uint8(2))
	f.Add(maskedFrame(0x88, []byte{0x03, 0xe7}), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, step uint8) {
		whole, wholeRefusal := scanAll(b, len(b)+1)
		cut, cutRefusal := scanAll(b, int(step%32)+1)
		switch {
		case (wholeRefusal == nil) != (cutRefusal == nil):
			t.Fatalf("whole: %v, in pieces of %d: %v", wholeRefusal, step%32+1, cutRefusal)
		case wholeRefusal == nil:
			if whole != len(b) || cut != len(b) {
				t.Fatalf("accepted, but released %d and %d of %d bytes", whole, cut, len(b))
			}
		case *wholeRefusal != *cutRefusal:
			t.Fatalf("refused for %v whole and %v in pieces", *wholeRefusal, *cutRefusal)
		case cut < whole || cut >= len(b) || whole >= len(b):
			t.Fatalf("refused, released %d whole and %d in pieces of %d bytes", whole, cut, len(b))
		}
	})
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
		if n, refusal := scanAll(b, step); refusal != nil || n != len(b) {
			t.Fatalf("pieces of %d: released %d of %d, refused: %v", step, n, len(b), refusal)
		}
	}
}
