package wsroute

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The group paths of the management API, beside @connections. Their last
// segments, after any prefix (the stage):
//
//	POST   …/@groups/{group}                         body: the message → 200 {"delivered":…,"skipped":…,"gone":…}
//	GET    …/@groups/{group}/members                 → 200 {"members":["id",…]}
//	PUT    …/@groups/{group}/members/{connectionId}  → 204 (join)
//	DELETE …/@groups/{group}/members/{connectionId}  → 204 (leave)
//	POST   …/@broadcast                              body: the message → 200 {"delivered":…,"skipped":…,"gone":…}
//
// A path that is also …/@connections/{id} is served as that. With a
// GroupBackplane, the post results also have "published":true, and the
// member paths take any connection ID of the API (see GroupManager).
const (
	groupsSegment    = "@groups"
	broadcastSegment = "@broadcast"
	membersSegment   = "members"

	msgInvalidGroup = "Invalid group name"
)

// groupPath is a parsed group path.
type groupPath struct {
	kind  groupPathKind
	group string
	id    string // for groupMember
}

type groupPathKind uint8

const (
	groupPost groupPathKind = iota + 1
	groupMembers
	groupMember
	groupBroadcast
)

// routes, as API Gateway's "No method found" message names them, and the
// methods each allows.
var groupRoutes = map[groupPathKind]struct{ route, allow string }{
	groupPost:      {groupsSegment + "/{group}", "POST"},
	groupMembers:   {groupsSegment + "/{group}/" + membersSegment, "GET"},
	groupMember:    {groupsSegment + "/{group}/" + membersSegment + "/{connectionId}", "DELETE, PUT"},
	groupBroadcast: {broadcastSegment, "POST"},
}

// parseGroupPath parses the last segments of an escaped path. ok is false
// when it is no group path. Segments are percent-decoded; a segment that
// does not decode makes the path no group path.
func parseGroupPath(escaped string) (p groupPath, ok bool) {
	raw := strings.Split(escaped, "/")
	seg := func(fromEnd int) (string, bool) {
		i := len(raw) - fromEnd
		if i < 1 { // raw[0] is what precedes the leading "/"
			return "", false
		}
		s, err := url.PathUnescape(raw[i])
		return s, err == nil
	}
	is := func(fromEnd int, want string) bool {
		s, ok := seg(fromEnd)
		return ok && s == want
	}
	switch {
	case is(4, groupsSegment) && is(2, membersSegment):
		g, ok1 := seg(3)
		id, ok2 := seg(1)
		return groupPath{groupMember, g, id}, ok1 && ok2
	case is(3, groupsSegment) && is(1, membersSegment):
		g, ok := seg(2)
		return groupPath{groupMembers, g, ""}, ok
	case is(2, groupsSegment):
		g, ok := seg(1)
		return groupPath{groupPost, g, ""}, ok
	case is(1, broadcastSegment):
		return groupPath{kind: groupBroadcast}, true
	}
	return groupPath{}, false
}

// serveGroups serves r when its path is a group path and h's
// ConnectionManager has groups; it reports whether it did. r is
// authenticated, and body read, already.
func (h *managementHandler) serveGroups(w http.ResponseWriter, r *http.Request, requestID string, body []byte) bool {
	gm := groupsOf(h.cm)
	if gm == nil {
		return false
	}
	p, ok := parseGroupPath(r.URL.EscapedPath())
	if !ok {
		return false
	}
	rt := groupRoutes[p.kind]
	allowed := false
	for m := range strings.SplitSeq(rt.allow, ", ") {
		allowed = allowed || m == r.Method
	}
	if !allowed {
		method := r.Method
		if len(method) > maxEchoedMethodLen {
			method = method[:maxEchoedMethodLen] + "…"
		}
		w.Header().Set("Allow", rt.allow)
		writeManagementError(w, &mgmtError{http.StatusForbidden, shapeForbidden,
			"No method found matching route " + rt.route + " for http method " + method + "."})
		return true
	}
	if p.kind != groupBroadcast && !validGroupName(p.group) {
		writeManagementError(w, &mgmtError{http.StatusBadRequest, shapeBadRequest, msgInvalidGroup})
		return true
	}
	if p.kind == groupMember {
		switch {
		case p.id == "":
			writeManagementError(w, &mgmtError{http.StatusBadRequest, shapeBadRequest, msgMissingID})
			return true
		case !validConnectionID(p.id):
			writeManagementError(w, &mgmtError{http.StatusGone, shapeGone, msgInvalidID})
			return true
		}
	}

	var (
		res  PostResult
		ids  []string
		err  error
		resp any
	)
	func() {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("wsroute: GroupManager panicked: %v", v)
			}
		}()
		ctx := r.Context()
		switch {
		case p.kind == groupPost:
			res, err = gm.PostToGroup(ctx, p.group, body)
			resp = res
		case p.kind == groupBroadcast:
			res, err = gm.Broadcast(ctx, body)
			resp = res
		case p.kind == groupMembers:
			ids, err = gm.Members(ctx, p.group)
			if ids == nil {
				ids = []string{}
			}
			resp = struct {
				Members []string `json:"members"`
			}{ids}
		case r.Method == http.MethodPut:
			err = gm.Join(ctx, p.group, p.id)
		default:
			err = gm.Leave(ctx, p.group, p.id)
		}
	}()
	if err != nil {
		e := managerError(err)
		if errors.Is(err, ErrInvalidGroup) {
			e = &mgmtError{http.StatusBadRequest, shapeBadRequest, msgInvalidGroup}
		}
		if e.status >= 500 {
			h.log.Error("wsroute: management API: GroupManager failed",
				"method", r.Method, "path", r.URL.EscapedPath(), "requestId", requestID, "error", err)
		}
		writeManagementError(w, e)
		return true
	}
	if resp == nil {
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	b, _ := json.Marshal(resp) // cannot fail: ints and strings
	w.Header().Set(headerContentType, jsonContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return true
}
