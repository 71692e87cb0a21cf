package wsroute

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// IDs take API Gateway's form: 11 random bytes in URL-safe base64, 16
// characters ending in "=".
//
// A connection ID is drawn from crypto/rand: it names the connection to the
// management API, and nobody should be able to guess another's. Request and
// message IDs only label events and log lines; they come from the runtime's
// per-thread ChaCha8 generator (math/rand/v2), which takes no lock, so that
// connections do not queue for them.
const (
	idRawLen = 11
	idLen    = 16 // base64.URLEncoding.EncodedLen(idRawLen)
)

// idSource makes connection IDs. It reads crypto/rand in blocks to keep a
// system call off the per-connection path.
type idSource struct {
	mu  sync.Mutex
	buf [idRawLen * 64]byte
	off int
}

func (s *idSource) next() string {
	var raw [idRawLen]byte
	var out [idLen]byte
	s.mu.Lock()
	if s.off == 0 || s.off == len(s.buf) {
		_, _ = rand.Read(s.buf[:]) // never fails; crashes the program if it cannot read
		s.off = 0
	}
	chunk := s.buf[s.off : s.off+idRawLen]
	copy(raw[:], chunk)
	clear(chunk) // leave no copy of a handed-out ID behind
	s.off += idRawLen
	s.mu.Unlock()
	base64.URLEncoding.Encode(out[:], raw[:])
	return string(out[:])
}

// putEventID writes a request or message ID into dst[:idLen].
func putEventID(dst []byte) {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], mrand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], mrand.Uint64())
	base64.URLEncoding.Encode(dst[:idLen], raw[:idRawLen])
}

// eventID returns a new request ID.
func eventID() string {
	b := make([]byte, idLen)
	putEventID(b)
	return unsafe.String(unsafe.SliceData(b), idLen)
}

// eventIDPair returns a message ID and a request ID made with one allocation.
func eventIDPair() (string, string) { return putEventIDPair(make([]byte, 2*idLen)) }

// putEventIDPair writes a message ID and a request ID into dst, 2*idLen
// bytes that are never written again, and returns them.
func putEventIDPair(dst []byte) (messageID, requestID string) {
	putEventID(dst)
	putEventID(dst[idLen:])
	s := unsafe.String(unsafe.SliceData(dst), 2*idLen)
	return s[:idLen], s[idLen:]
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
