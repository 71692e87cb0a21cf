// Package wsroutetest helps test code written for [wsroute]: route handlers,
// whole applications, and clients of the @connections API.
//
// It works at two levels.
//
// # Through the network
//
// [NewServer] serves a [wsroute.Router] (or any handler that mounts one) on an
// [httptest.Server] bound to 127.0.0.1 and shuts both down when the test ends.
// [Server.Dial] and [Dial] open WebSocket clients with headers, query
// parameters and subprotocols; a [Client] sends text, JSON and actions
// ([Client.SendAction], built for the router's route selection expression,
// whatever it is) and expects frames, JSON frames, the exact Forbidden and
// Internal server error frames that API Gateway sends
// ([Client.ExpectForbidden], [Client.ExpectInternalServerError]), silence, or
// a close code. Every wait is bounded by the context passed in and by
// [Client.Timeout]. A client from [Server.Dial] knows its connection ID
// ([Client.ConnectionID]), so a test can push to it or close it through the
// router. Close codes are plain numbers (c.ExpectClose(ctx, 1001)): ordinary
// tests need not import the WebSocket transport.
//
// Routers made by [NewRouter] log through t.Logf ([Logger]), so a handler's
// error or panic shows beside the test that caused it.
//
// # Without a network
//
// [Events] builds the CONNECT, MESSAGE and DISCONNECT [wsroute.Request] values
// that a router would pass to a handler, with API Gateway-shaped IDs and
// times, so a handler can be called directly. [Recorder] is an in-memory
// [wsroute.ConnectionManager] that records what a handler pushed to each
// connection; give it to the handler under test where it expects the
// router's manager: pass [Recorder.Context](ctx) to a handler that calls
// [wsroute.ConnectionsFromContext] (without it, that call's manager panics
// and says so).
//
// Everything here reports failures through the [TB] it was given (the test's
// *testing.T) and cleans up with its Cleanup: no goroutine it starts outlives
// the test.
package wsroutetest

// TB is the part of [testing.TB] this package uses. *testing.T, *testing.B
// and *testing.F satisfy it; so can a small type of your own, to use the
// helpers outside a test function (as this package's examples do).
type TB interface {
	Helper()
	Cleanup(func())
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}
