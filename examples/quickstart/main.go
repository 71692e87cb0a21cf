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
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"time"

	"github.com/wsroute/wsroute"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	router, handler := newServer(os.Getenv("MANAGEMENT_TOKEN"))
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: handler}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		router.Shutdown(shutdown) // closes WebSockets (http.Server.Shutdown does not)
		srv.Shutdown(shutdown)
	}()
	log.Printf("clients dial ws://%s/ws", srv.Addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
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
