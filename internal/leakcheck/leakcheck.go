// Package leakcheck finds goroutines that outlive a test binary's tests.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// suspects are the packages whose goroutines must all be gone when the tests
// end: ours, the WebSocket transport's, and HTTP servers and clients.
var suspects = []string{"github.com/wsroute/wsroute", "github.com/coder/websocket", "net/http."}

// Leaked returns the stacks of goroutines running code of a suspect package
// (ours, the transport's, net/http's, and those of the packages named in
// also), waiting up to wait for them to end.
func Leaked(wait time.Duration, also ...string) []string {
	deadline := time.Now().Add(wait)
	for {
		leaked := find(slices.Concat(also, suspects))
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func find(suspects []string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var leaked []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // this goroutine
			continue
		}
		if strings.Contains(g, "leakcheck.") {
			continue
		}
		for _, s := range suspects {
			if strings.Contains(g, s) {
				leaked = append(leaked, g)
				break
			}
		}
	}
	return leaked
}

// Main runs the tests, then fails the binary when a goroutine outlives them.
// Call it from TestMain: func TestMain(m *testing.M) { leakcheck.Main(m) }.
// also names more packages whose goroutines must be gone, such as a broker
// client's ("github.com/nats-io/").
func Main(m *testing.M, also ...string) {
	code := m.Run()
	if code == 0 {
		if leaked := Leaked(10*time.Second, also...); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "leakcheck: %d goroutine(s) outlived the tests:\n\n%s\n", len(leaked), strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}
