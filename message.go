package wsroute

import (
	"encoding/base64"
	"unsafe"
)

// A MESSAGE event is made with one allocation when its body is small: the
// Request, the storage of its message and request IDs, and a copy of the
// frame (the read buffer goes back to its pool), side by side. A handler that
// keeps the event's Body, or one of its IDs, keeps that allocation (about
// 0.7 KiB for a frame up to 128 bytes); a larger body is allocated apart.

// inline bodies of up to 128 and 512 bytes; past that the body is allocated
// apart, and costs little beside its own size.
const (
	smallBody = 128
	largeBody = 512
)

type messageSmall struct {
	req  Request
	ids  [2 * idLen]byte
	body [smallBody]byte
}

type messageLarge struct {
	req  Request
	ids  [2 * idLen]byte
	body [largeBody]byte
}

type messageApart struct {
	req Request
	ids [2 * idLen]byte
}

// newMessage allocates a MESSAGE event with room for its IDs and a body of n
// bytes, which the caller fills in before it builds the body's string.
func newMessage(n int) (ev *Request, ids, body []byte) {
	switch {
	case n <= smallBody:
		m := new(messageSmall)
		return &m.req, m.ids[:], m.body[:n]
	case n <= largeBody:
		m := new(messageLarge)
		return &m.req, m.ids[:], m.body[:n]
	default:
		m := new(messageApart)
		return &m.req, m.ids[:], make([]byte, n)
	}
}

// messageEvent copies frame, a text frame or, base64-encoded, a binary one,
// into a new MESSAGE event's body, and draws its IDs. It returns the event
// with only Body and IsBase64Encoded set, and the two IDs. Neither the event
// nor what it holds refers to frame.
func messageEvent(frame []byte, binary bool) (ev *Request, messageID, requestID string) {
	n := len(frame)
	if binary {
		n = base64.StdEncoding.EncodedLen(len(frame))
	}
	ev, ids, body := newMessage(n)
	if binary {
		base64.StdEncoding.Encode(body, frame)
	} else {
		copy(body, frame)
	}
	putEventID(ids)
	putEventID(ids[idLen:])
	ev.Body = unsafe.String(unsafe.SliceData(body), n) // never written again
	ev.IsBase64Encoded = binary
	both := unsafe.String(unsafe.SliceData(ids), 2*idLen)
	return ev, both[:idLen], both[idLen:]
}
