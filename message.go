package wsroute

import (
	"encoding/base64"
	"unsafe"
)

// A MESSAGE event is made with one allocation when its body is small: the
// Request, the storage of its message and request IDs, and a copy of the
// frame (the read buffer goes back to its pool), side by side. A handler that
// keeps the event's Body, or one of its IDs, keeps that allocation (704
// bytes). A larger body is allocated apart, together with the IDs, in memory
// the garbage collector does not scan: two allocations.

// inlineBody is the largest body made in the same allocation as its event.
const inlineBody = 128

type inlineMessage struct {
	req  Request
	ids  [2 * idLen]byte
	body [inlineBody]byte
}

// newMessage allocates a MESSAGE event with room for its IDs and a body of n
// bytes, which the caller fills in before it builds the body's string.
func newMessage(n int) (ev *Request, ids, body []byte) {
	if n <= inlineBody {
		m := new(inlineMessage)
		return &m.req, m.ids[:], m.body[:n]
	}
	b := make([]byte, 2*idLen+n)
	return new(Request), b[:2*idLen], b[2*idLen:]
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
	ev.Body = unsafe.String(unsafe.SliceData(body), n) // never written again
	ev.IsBase64Encoded = binary
	messageID, requestID = putEventIDPair(ids)
	return ev, messageID, requestID
}
