package wsroute

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestManagerErrorMapping(t *testing.T) {
	tests := []struct {
		err    error
		status int
		shape  string
	}{
		{ErrGone, http.StatusGone, "GoneException"},
		{fmt.Errorf("nats: %w", ErrGone), http.StatusGone, "GoneException"},
		{ErrLimitExceeded, http.StatusTooManyRequests, "LimitExceededException"},
		{ErrPayloadTooLarge, http.StatusRequestEntityTooLarge, "PayloadTooLargeException"},
		{ErrAccessDenied, http.StatusForbidden, "ForbiddenException"},
		{context.Canceled, http.StatusServiceUnavailable, "ServiceUnavailableException"},
		{ErrRouterClosed, http.StatusServiceUnavailable, "ServiceUnavailableException"},
		{fmt.Errorf("remote: %w", context.DeadlineExceeded), http.StatusGatewayTimeout, "GatewayTimeoutException"},
		{errors.New("disk on fire"), http.StatusInternalServerError, "InternalServerErrorException"},
	}
	for _, tt := range tests {
		got := managerError(tt.err)
		if got.status != tt.status || got.shape != tt.shape || got.message == "" {
			t.Errorf("managerError(%v) = %+v, want %d %s", tt.err, got, tt.status, tt.shape)
		}
		if got.message == tt.err.Error() {
			t.Errorf("managerError(%v) sends the error's text", tt.err)
		}
	}
}

func TestParseManagementPath(t *testing.T) {
	tests := []struct {
		path string
		id   string
		ok   bool
	}{
		{"/@connections/abc", "abc", true},
		{"/prod/@connections/L0SM9cOFvHcCIhw%3D", "L0SM9cOFvHcCIhw=", true},
		{"/prod/%40connections/L0SM9cOFvHcCIhw%3d", "L0SM9cOFvHcCIhw=", true},
		{"/a/b/c/%40connections/x", "x", true},
		{"@connections/x", "", false}, // not a path
		{"/@connections/", "", true},
		{"/@connections/a%2Fb", "a/b", true},
		{"/@connections", "", false},
		{"/@connections/a/b", "", false},
		{"/@connectionsx/a", "", false},
		{"/%40CONNECTIONS/a", "", false},
		{"", "", false},
		{"/", "", false},
		{"/@connections/%zz", "", false},
	}
	for _, tt := range tests {
		id, ok := parseManagementPath(tt.path)
		if id != tt.id || ok != tt.ok {
			t.Errorf("parseManagementPath(%q) = %q, %v; want %q, %v", tt.path, id, ok, tt.id, tt.ok)
		}
	}
}

func TestValidConnectionID(t *testing.T) {
	for id, want := range map[string]bool{
		"L0SM9cOFvHcCIhw=": true, "a": true, "a/b+c": true, string(make([]byte, 128)): false,
		"": false, "a b": false, "a\x00": false, "é": false, "a\x7f": false,
	} {
		if got := validConnectionID(id); got != want {
			t.Errorf("validConnectionID(%q) = %v, want %v", id, got, want)
		}
	}
	long := make([]byte, 129)
	for i := range long {
		long[i] = 'a'
	}
	if validConnectionID(string(long)) || !validConnectionID(string(long[:128])) {
		t.Error("the 128-byte bound is wrong")
	}
}

func TestManagementRequestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newManagementRequestID()
		if len(id) != 36 || id[14] != '4' || seen[id] {
			t.Fatalf("bad or repeated request ID %q", id)
		}
		seen[id] = true
	}
}
