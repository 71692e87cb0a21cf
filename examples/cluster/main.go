// Command cluster runs the chat example as one API served by three nodes
// joined by NATS, in one process:
//
//	go run ./examples/cluster
//
// starts an embedded NATS server (nats-server as a library) and three
// routers on three ports, each serving the chat page of examples/chat. Open
// two nodes' pages in two browsers: users on different nodes chat with each
// other, and the management API of the third node reaches both. The three
// nodes share the chat's state (who is who, who is in which room) in memory;
// every push goes through the first router's ConnectionManager or
// GroupManager (rooms and presence are groups), and so through NATS when
// the connection is on another node: users on different nodes share rooms
// and see each other online.
//
// Flags:
//
//	-nats URL     join an existing NATS server or cluster instead of embedding one
//	-nats-addr    address of the embedded NATS server (default 127.0.0.1:4222)
//	-addrs        the three nodes' addresses (default 127.0.0.1:8081,…:8082,…:8083)
//	-node ADDR    run a single node on ADDR (one node per process; see below)
//	-api NAME     the API name that namespaces the NATS subjects (default chat)
//	-bearer-token the management API's bearer token (default: generated)
//
// One node per process, two terminals on one machine:
//
//	go run ./examples/cluster -node 127.0.0.1:8081                                  # embeds NATS on :4222
//	go run ./examples/cluster -node 127.0.0.1:8082 -nats nats://127.0.0.1:4222
//
// Each process then keeps the chat state of its own users: a user can send
// private messages to users of the same process only, and each process
// sends the list of its own users as the presence list. Rooms and presence
// are groups, which span the processes: a room's posts reach its members in
// both, and both processes' presence lists reach everyone. The management
// API of either process reaches every connection of both.
package main

import (
	"context"
	"crypto/rand"
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/examples/chat/chatapp"
	wsnats "github.com/wsroute/wsroute/nats"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// run serves the nodes until ctx is done, then shuts them down.
func run(ctx context.Context, args []string, out, logOut io.Writer) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(logOut)
	natsURL := fs.String("nats", "", "URL(s) of an existing NATS server or cluster, comma-separated (default: embed one)")
	natsAddr := fs.String("nats-addr", "127.0.0.1:4222", "address of the embedded NATS server")
	addrs := fs.String("addrs", "127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083", "addresses of the three nodes")
	single := fs.String("node", "", "run a single node on this address")
	api := fs.String("api", "chat", "API name: the NATS subjects' namespace")
	token := fs.String("bearer-token", "", "bearer token of the management API (default: generated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *token == "" {
		*token = randomString(24)
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	nodeAddrs := strings.Split(*addrs, ",")
	if *single != "" {
		nodeAddrs = []string{*single}
	}

	if *natsURL == "" {
		ns, err := embedNATS(*natsAddr)
		if err != nil {
			return err
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
		*natsURL = ns.ClientURL()
		fmt.Fprintf(out, "Embedded NATS server: %s\n", *natsURL)
	}

	var (
		app     *chatapp.App
		servers []*http.Server
		routers []*wsroute.Router
	)
	defer func() {
		// Routers first: http.Server.Shutdown does not touch WebSocket
		// connections. Each router's Shutdown closes its backplane.
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, r := range routers {
			_ = r.Shutdown(sctx)
		}
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
	}()
	serveErr := make(chan error, len(nodeAddrs))
	for i, addr := range nodeAddrs {
		name := string(rune('A' + i))
		bp, err := wsnats.Connect(*natsURL, &wsnats.Options{API: *api, Logger: log}, nats.Name("wsroute cluster example node "+name))
		if err != nil {
			return err
		}
		ro := &wsroute.Options{Backplane: bp, Logger: log}
		mgmt := func(cm wsroute.ConnectionManager) http.Handler {
			return wsroute.NewManagementHandler(cm, &wsroute.ManagementOptions{BearerTokens: []string{*token}, Logger: log})
		}
		var handler http.Handler
		if app == nil {
			// The first node's app holds the chat's state; the others
			// serve the same app on routers of their own.
			app, err = chatapp.New(&chatapp.Options{Router: ro, Logger: log,
				ManagementHandler: func(cm wsroute.ConnectionManager) (http.Handler, error) { return mgmt(cm), nil }})
			if err != nil {
				_ = bp.Close()
				return err
			}
			routers = append(routers, app.Router())
			handler = app.Handler()
		} else {
			r, err := wsroute.New(ro)
			if err != nil {
				_ = bp.Close()
				return err
			}
			routers = append(routers, r)
			handler = app.ServeOn(r, mgmt(r.Connections()))
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		base := "http://" + ln.Addr().String()
		fmt.Fprintf(out, "Node %s:  chat page %s/   WebSocket ws://%s%s   management API %s%s\n",
			name, base, ln.Addr(), chatapp.EndpointPath, base, chatapp.EndpointPath)
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		servers = append(servers, srv)
		go func() { serveErr <- srv.Serve(ln) }()
	}
	fmt.Fprintf(out, `
Bearer token of the management APIs: %[1]s

Open two nodes' chat pages in two browsers and register two users; then, with
a connection ID from the log ("user registered"), from any node:
  curl -X POST -H 'Authorization: Bearer %[1]s' \
    --data '{"type":"notice","message":"Hello from the management API"}' \
    'http://<node>/ws/@connections/<connectionId>'

Press Ctrl+C to stop.
`, *token)

	select {
	case <-ctx.Done():
		log.Info("cluster: shutting down")
		return nil
	case err := <-serveErr:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// embedNATS starts a NATS server on addr (port 0: any free port).
func embedNATS(addr string) (*server.Server, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-nats-addr: %w", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("-nats-addr: %w", err)
	}
	if p == 0 {
		p = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{Host: host, Port: p, NoSigs: true, NoLog: true})
	if err != nil {
		return nil, err
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("the embedded NATS server does not start on %s", addr)
	}
	return ns, nil
}

// randomString returns n random bytes in URL-safe base64 without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
