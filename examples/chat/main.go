// Command chat is wsroute's chat example: a browser chat client and its
// WebSocket API, with API Gateway's routing model and @connections API, on one
// port.
//
//	go run ./examples/chat
//
// then open http://127.0.0.1:8080/ in two windows. The WebSocket endpoint is
// ws://127.0.0.1:8080/ws, and http://127.0.0.1:8080/ws is the endpoint to give
// an AWS SDK's ApiGatewayManagementApi client, as a stage URL: it serves
// POST, GET and DELETE /ws/@connections/{connectionId}, authenticated with
// the SigV4 credentials or the bearer token the program prints. See
// README.md in this folder for the messages and flags.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/examples/chat/chatapp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// run serves the chat until ctx is done, then shuts down gracefully. It
// prints the URLs and credentials to out and logs to logOut.
func run(ctx context.Context, args []string, out, logOut io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(logOut)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	keyID := fs.String("access-key-id", "", "SigV4 access key ID of the management API (default: generated)")
	secret := fs.String("secret-access-key", "", "SigV4 secret access key of the management API (default: generated)")
	token := fs.String("bearer-token", "", "bearer token of the management API (default: generated)")
	verbose := fs.Bool("v", false, "log every connection and registration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if (*keyID == "") != (*secret == "") {
		return errors.New("-access-key-id and -secret-access-key go together")
	}
	if *keyID == "" {
		*keyID, *secret = newAccessKey()
	}
	if *token == "" {
		*token = randomString(32)
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(unquoteIDs{logOut}, &slog.HandlerOptions{Level: level}))
	app, err := chatapp.New(&chatapp.Options{
		Logger: log,
		ManagementHandler: func(cm wsroute.ConnectionManager) (http.Handler, error) {
			return wsroute.NewManagementHandler(cm, &wsroute.ManagementOptions{
				Credentials:  map[string]string{*keyID: *secret},
				BearerTokens: []string{*token},
				Logger:       log,
			}), nil
		},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, `wsroute chat example

  Chat page:        %[1]s/
  WebSocket:        ws://%[2]s%[3]s
  Management API:   %[1]s%[3]s  (the endpoint to give an AWS SDK; serves %[3]s/@connections/{connectionId})

  SigV4 access key ID:      %[4]s
  SigV4 secret access key:  %[5]s
  Bearer token:             %[6]s

  Try (connection IDs are logged when users register):
    curl -X POST -H 'Authorization: Bearer %[6]s' \
      --data '{"type":"notice","message":"Hello from the management API"}' \
      '%[1]s%[3]s/@connections/<connectionId>'

Press Ctrl+C to stop.
`, base, ln.Addr(), chatapp.EndpointPath, *keyID, *secret, *token)

	srv := &http.Server{
		Handler: app.Handler(),
		// Bound what a slow or idle client can hold. WebSocket connections
		// are hijacked at the upgrade, which clears these deadlines: they
		// bound the handshake, the page and the management API, while the
		// router's IdleTimeout and MaxConnectionDuration bound the
		// WebSockets.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		log.Info("chat: shutting down")
	case err = <-serveErr:
	}

	// The router first: http.Server.Shutdown does not touch WebSocket
	// connections, which the router closes with 1001 "Going away".
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := app.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// newAccessKey returns a random access key ID shaped like AWS's (20
// upper-case characters starting with AKIA) and a 40-character secret.
func newAccessKey() (id, secret string) {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	id = "AKIA" + base32.StdEncoding.EncodeToString(b)[:16]
	return id, randomString(30)
}

// randomString returns n random bytes in URL-safe base64 without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// unquoteIDs writes log lines with connection IDs unquoted. slog's text
// handler quotes any value that contains "=", and every connection ID ends
// in "=": connectionId="L0SM9cOFvHcCIhw=" would carry its quotes into a
// pasted URL or command. The IDs hold nothing else that needs quoting.
type unquoteIDs struct{ w io.Writer }

var quotedID = regexp.MustCompile(`(connectionId)="([A-Za-z0-9_-]+=*)"`)

func (u unquoteIDs) Write(p []byte) (int, error) {
	if _, err := u.w.Write(quotedID.ReplaceAll(p, []byte("$1=$2"))); err != nil {
		return 0, err
	}
	return len(p), nil
}
