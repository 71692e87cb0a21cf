// Command quickstart is the README's quick start: a WebSocket API that
// broadcasts every "sendmessage" to all connections, with the @connections
// management API beside it.
//
//	MANAGEMENT_TOKEN=s3cret go run ./examples/quickstart
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/wsroute/wsroute"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("clients dial ws://%s/ws", ln.Addr())
	if err := run(ctx, ln, os.Getenv("MANAGEMENT_TOKEN")); err != nil {
		log.Fatal(err)
	}
}

// run serves on ln until ctx is done, then shuts down gracefully and returns
// only when the shutdown has finished: every WebSocket closed with 1001 and
// its $disconnect run, every HTTP request answered.
func run(ctx context.Context, ln net.Listener, managementToken string) error {
	router, handler := newServer(managementToken)
	srv := &http.Server{
		Handler: handler,
		// Bound what a slow or idle client can hold. WebSocket connections
		// are hijacked at the upgrade, which clears these deadlines: they
		// bound the handshake and the plain HTTP requests (the management
		// API), while the router's IdleTimeout and MaxConnectionDuration
		// bound the WebSockets.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err // the listener failed
	case <-ctx.Done():
	}

	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The router first: http.Server.Shutdown does not touch hijacked
	// connections, which the router closes with 1001 "Going away".
	err := router.Shutdown(shutdown)
	if serr := srv.Shutdown(shutdown); err == nil {
		err = serr
	}
	if serr := <-serveErr; err == nil && !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	return err
}

// newServer builds the router and mounts it, with the management API when a
// bearer token is given.
func newServer(managementToken string) (*wsroute.Router, http.Handler) {
	router, err := wsroute.New(nil) // routes on $request.body.action
	if err != nil {
		log.Fatal(err)
	}

	var mu sync.Mutex
	connected := map[string]bool{}
	router.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		mu.Lock()
		connected[req.RequestContext.ConnectionID] = true
		mu.Unlock()
		return &wsroute.Response{StatusCode: 200}, nil
	})
	router.HandleFunc(wsroute.RouteDisconnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		mu.Lock()
		delete(connected, req.RequestContext.ConnectionID)
		mu.Unlock()
		return nil, nil
	})
	router.HandleFunc("sendmessage", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		var msg struct {
			Data string `json:"data"`
		}
		if err := json.Unmarshal([]byte(req.Body), &msg); err != nil {
			return &wsroute.Response{Body: `{"error":"send {\"action\":\"sendmessage\",\"data\":\"…\"}"}`}, nil
		}
		mu.Lock()
		ids := slices.Collect(maps.Keys(connected))
		mu.Unlock()
		cm := wsroute.ConnectionsFromContext(ctx)
		for _, id := range ids {
			_ = cm.PostToConnection(ctx, id, []byte(msg.Data)) // ErrGone: it has just left
		}
		return nil, nil
	})

	mux := http.NewServeMux()
	mux.Handle("/ws", router)
	if managementToken != "" {
		// An AWS SDK given the endpoint http://127.0.0.1:8080/ws calls
		// POST|GET|DELETE /ws/@connections/{id}.
		mux.Handle("/ws/@connections/", wsroute.NewManagementHandler(router.Connections(),
			&wsroute.ManagementOptions{BearerTokens: []string{managementToken}}))
	}
	return router, mux
}
