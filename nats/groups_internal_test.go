package wsnats

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestGroupToken checks that every valid group name escapes into one NATS
// subject token and back.
func TestGroupToken(t *testing.T) {
	names := []string{
		"a", "room:lobby", "presence", "a.b", "*", ">", "a b", "100%", "%41", "ünïcødé", "日本語",
		"tab\u00a0nbsp", "$SYS", "a..b", strings.Repeat("é", 64), strings.Repeat(".", 128),
	}
	for c := rune(0x20); c < 0x3000; c++ {
		if c != 0x7f && (c < 0x80 || c >= 0xa0) {
			names = append(names, "x"+string(c)+"y")
		}
	}
	for _, name := range names {
		tok := groupToken(name)
		if !validToken(tok) || !utf8.ValidString(tok) {
			t.Fatalf("groupToken(%q) = %q: not a subject token", name, tok)
		}
		back, ok := groupName(tok)
		if !ok || back != name {
			t.Fatalf("groupName(groupToken(%q)) = %q, %v", name, back, ok)
		}
	}
	if groupToken("room:lobby") != "room:lobby" {
		t.Errorf("plain names are not kept readable: %q", groupToken("room:lobby"))
	}
	for _, bad := range []string{"%", "%4", "%4g", "%zz"} {
		if _, ok := groupName(bad); ok {
			t.Errorf("groupName(%q) accepted", bad)
		}
	}
}
