package wsroute

import (
	"crypto/sha256"
	"crypto/subtle"
)

// apiKeySet holds the digests of Options.APIKeys, so that a key is checked
// in time that depends neither on which key matched nor on its length.
type apiKeySet [][sha256.Size]byte

func newAPIKeySet(keys []string) apiKeySet {
	if len(keys) == 0 {
		return nil
	}
	s := make(apiKeySet, len(keys))
	for i, k := range keys {
		s[i] = sha256.Sum256([]byte(k))
	}
	return s
}

// valid reports whether key is one of the keys, comparing it with all of
// them. The empty key is never valid (New refuses empty keys).
func (s apiKeySet) valid(key string) bool {
	d := sha256.Sum256([]byte(key))
	match := 0
	for i := range s {
		match |= subtle.ConstantTimeCompare(d[:], s[i][:])
	}
	return match == 1 && key != ""
}
