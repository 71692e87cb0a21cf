package wsroute

import (
	"fmt"
	"net/http"
)

// MountStage serves the router on mux as API Gateway serves a stage: the
// WebSocket endpoint at "/{Stage}" and, when management is not nil, the
// @connections API at "/{Stage}/@connections/". [Options.Stage] names the
// stage ("local" by default).
//
// Functions written for API Gateway build their management client from the
// event, with the endpoint "https://" + domainName + "/" + stage. With the
// router mounted by MountStage, and [Options.DomainName] left to default to
// the Host the client dialed (host:port), that endpoint is this server's
// management API: clients dial ws://host:port/{stage}, and the functions'
// callbacks reach http(s)://host:port/{stage}/@connections/{id}, unchanged.
// Behind a proxy that changes the Host, set DomainName to the host the
// functions should call.
//
// It panics when the stage is not 1 to 128 letters, digits, '-' or '_' (the
// characters API Gateway allows in a stage name), or when mux already has
// the patterns.
func (r *Router) MountStage(mux *http.ServeMux, management http.Handler) {
	stage := r.opts.Stage
	if !validStageName(stage) {
		panic(fmt.Sprintf("wsroute: MountStage: stage %q is not 1 to 128 letters, digits, '-' or '_'", stage))
	}
	mux.Handle("/"+stage, r)
	if management != nil {
		mux.Handle("/"+stage+"/"+connectionsSegment+"/", management)
	}
}

func validStageName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
