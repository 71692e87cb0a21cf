// Package wsroute brings the programming model of Amazon API Gateway's
// WebSocket APIs to any Go HTTP server: a [Router] is an HTTP handler
// ([net/http.Handler]) that accepts WebSocket connections, gives each an
// opaque ID, and routes every JSON message to a handler by a route selection
// expression; a [ConnectionManager] pushes to, describes and closes any
// connection by its ID, in process or, through [NewManagementHandler], over
// API Gateway's @connections HTTP API, which unmodified AWS SDK clients call.
//
// You need not know API Gateway to use it. If you do, handlers receive API
// Gateway's Lambda proxy event field for field ([Request], [Response]), so
// handlers written for Lambda port by changing their signature.
//
// # A connection's life
//
//  1. $connect runs when a client opens a connection, before the handshake
//     completes; it accepts (2xx, or no $connect route) or refuses it.
//  2. Each text frame is a message: the route selection expression (default
//     $request.body.action) picks its route, e.g. {"action":"join"} → "join".
//  3. A message whose key has no route goes to $default, or, without one,
//     gets API Gateway's Forbidden frame back.
//  4. A handler's Response.Body, when not empty, goes back to the sender;
//     anything else is pushed with [ConnectionManager.PostToConnection].
//  5. $disconnect runs exactly once when the connection ends, however it
//     ends, with the close code and reason.
//
// # A minimal server
//
//	router, err := wsroute.New(nil) // routes on $request.body.action
//	if err != nil {
//		log.Fatal(err)
//	}
//	router.HandleFunc("greet", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
//		return &wsroute.Response{Body: `{"hello":"world"}`}, nil // back to the sender
//	})
//	http.Handle("/ws", router) // clients dial ws://host/ws and send {"action":"greet"}
//
// A handler reaches the router's connections with [ConnectionsFromContext];
// code outside handlers uses [Router.Connections]. On shutdown, call
// [Router.Shutdown] as well as [net/http.Server.Shutdown], which does not
// touch WebSocket connections.
//
// # Where to read on
//
//   - [Router], [Handler] and [Options]: routes, middleware ([Router.Use]),
//     limits and their defaults, authorizers and API keys, compression.
//   - [Expression] and EXPRESSIONS.md: the route selection grammar.
//   - [NewManagementHandler] and docs/management.md: the @connections API.
//   - Package github.com/wsroute/wsroute/wsroutetest: test servers, clients
//     and events for testing handlers.
//   - README.md: installation, a quick start, and every choice made where
//     API Gateway leaves a gap; examples/ holds runnable programs.
//
// Errors are logged to [Options.Logger], [log/slog.Default] unless set.
package wsroute
