package wsroute

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"sync/atomic"
	"time"
)

// idSource makes connection, request and message IDs in API Gateway's form:
// 11 random bytes in URL-safe base64, 16 characters ending in "=". It reads
// crypto/rand in blocks to keep a system call off the per-message path.
type idSource struct {
	mu  sync.Mutex
	buf [idRawLen * 64]byte
	off int
}

const (
	idRawLen = 11
	idLen    = 16 // base64.URLEncoding.EncodedLen(idRawLen)
)

func (s *idSource) fill(dst []byte) {
	s.mu.Lock()
	for i := 0; i < len(dst); i += idRawLen {
		if s.off == 0 || s.off == len(s.buf) {
			_, _ = rand.Read(s.buf[:]) // never fails; crashes the program if it cannot read
			s.off = 0
		}
		chunk := s.buf[s.off : s.off+idRawLen]
		copy(dst[i:i+idRawLen], chunk)
		clear(chunk) // leave no copy of a handed-out ID behind
		s.off += idRawLen
	}
	s.mu.Unlock()
}

func (s *idSource) next() string {
	var raw [idRawLen]byte
	var out [idLen]byte
	s.fill(raw[:])
	base64.URLEncoding.Encode(out[:], raw[:])
	return string(out[:])
}

// pair returns two IDs made with one allocation.
func (s *idSource) pair() (string, string) {
	var raw [2 * idRawLen]byte
	var out [2 * idLen]byte
	s.fill(raw[:])
	base64.URLEncoding.Encode(out[:idLen], raw[:idRawLen])
	base64.URLEncoding.Encode(out[idLen:], raw[idRawLen:])
	both := string(out[:])
	return both[:idLen], both[idLen:]
}

// requestClock formats requestTime once a second rather than once an event.
type requestClock struct{ last atomic.Pointer[clockEntry] }

type clockEntry struct {
	sec int64
	s   string
}

const requestTimeLayout = "02/Jan/2006:15:04:05 +0000"

func (c *requestClock) format(t time.Time) string {
	sec := t.Unix()
	if e := c.last.Load(); e != nil && e.sec == sec {
		return e.s
	}
	e := &clockEntry{sec: sec, s: t.UTC().Format(requestTimeLayout)}
	c.last.Store(e)
	return e.s
}
