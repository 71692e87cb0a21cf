package wsroute

import "encoding/base64"

// msgBadVersion refuses a handshake of another WebSocket version than 13;
// the response names the version supported in Sec-WebSocket-Version.
const msgBadVersion = "unsupported Sec-WebSocket-Version: only 13 is supported"

// validWebSocketKey reports whether k is what RFC 6455 §4.1 requires of a
// Sec-WebSocket-Key: the base64 encoding of 16 bytes, which the transport
// checks too. Checking it before $connect runs keeps $connect and the
// authorizer from running for a handshake the transport would refuse.
func validWebSocketKey(k string) bool {
	if len(k) != base64.StdEncoding.EncodedLen(16) {
		return false
	}
	var b [18]byte
	n, err := base64.StdEncoding.Decode(b[:], []byte(k))
	return err == nil && n == 16
}
