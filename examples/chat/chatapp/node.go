package chatapp

import (
	"net/http"

	"github.com/wsroute/wsroute"
)

// ServeOn serves the app's chat on another router as well, and returns the
// handler for it: the page, its assets, the WebSocket endpoint on r at
// [EndpointPath], and mgmt (when not nil) under EndpointPath + "/". Both
// routers' users share the app's state (who is registered, who is in which
// room); the app pushes through its own router's ConnectionManager and
// GroupManager, which reach r's connections only when the routers share a
// [wsroute.Backplane] (a [wsroute.GroupBackplane] for rooms and presence).
// The cluster example serves one chat on three routers so.
func (a *App) ServeOn(r *wsroute.Router, mgmt http.Handler) http.Handler {
	a.routes(r)
	n := &App{router: r, mgmt: mgmt, log: a.log}
	return n.mux()
}
