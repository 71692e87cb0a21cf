package wsroute_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// TestManagementGroups drives the group paths through raw HTTP with a bearer
// token, and checks each effect on real connections.
func TestManagementGroups(t *testing.T) {
	e := newMgmtEnv(t, nil, nil)
	a, b, c := e.dial("a"), e.dial("b"), e.dial("c")
	enc := func(id string) string { return strings.ReplaceAll(id, "=", "%3D") }

	// Join under any stage, with "@" or "%40".
	for _, p := range []string{
		"/prod/@groups/room/members/" + enc(a.id),
		"/%40groups/room/members/" + b.id,
		"/ws/@groups/room/members/" + enc(b.id), // twice: harmless
	} {
		r := e.do("PUT", p, nil, nil)
		require.Equal(t, http.StatusNoContent, r.status, "PUT %s: %s", p, r.body)
	}
	r := e.do("GET", "/prod/@groups/room/members", nil, nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.JSONEq(t, `{"members":`+toJSON(t, sortedIDs(a.id, b.id))+`}`, r.body)
	r = e.do("GET", "/prod/@groups/empty/members", nil, nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.JSONEq(t, `{"members":[]}`, r.body)

	// A post reaches the members, and says how many.
	r = e.do("POST", "/prod/@groups/room", strings.NewReader("hello room"), nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.JSONEq(t, `{"delivered":2,"skipped":0,"gone":0}`, r.body)
	assert.Equal(t, "hello room", a.read(t))
	assert.Equal(t, "hello room", b.read(t))

	// Leave, then post again: only b.
	r = e.do("DELETE", "/prod/@groups/room/members/"+enc(a.id), nil, nil)
	require.Equal(t, http.StatusNoContent, r.status, r.body)
	r = e.do("DELETE", "/prod/@groups/room/members/"+enc(a.id), nil, nil)
	require.Equal(t, http.StatusNoContent, r.status, "leaving twice: %s", r.body)
	r = e.do("POST", "/prod/@groups/room", strings.NewReader("only b"), nil)
	assert.JSONEq(t, `{"delivered":1,"skipped":0,"gone":0}`, r.body)
	assert.Equal(t, "only b", b.read(t))

	// Broadcast reaches everyone: a got nothing since it left.
	r = e.do("POST", "/prod/@broadcast", strings.NewReader("everyone"), nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.JSONEq(t, `{"delivered":3,"skipped":0,"gone":0}`, r.body)
	for _, cl := range []*mgmtClient{a, b, c} {
		assert.Equal(t, "everyone", cl.read(t))
	}

	// Names are percent-decoded.
	r = e.do("PUT", "/@groups/caf%C3%A9%20%2F%20bar/members/"+enc(c.id), nil, nil)
	require.Equal(t, http.StatusNoContent, r.status, r.body)
	m, err := e.router.Groups().Members(context.Background(), "café / bar")
	require.NoError(t, err)
	assert.Equal(t, []string{c.id}, m)

	// Errors, as API Gateway shapes them.
	requireMgmtError(t, e.do("PUT", "/@groups/room/members/AAAAAAAAAAAAAAA%3D", nil, nil), 410, "GoneException", "Gone")
	requireMgmtError(t, e.do("PUT", "/@groups/room/members/%01", nil, nil), 410, "GoneException", "Invalid connectionId")
	requireMgmtError(t, e.do("PUT", "/@groups/room/members/", nil, nil), 400, "BadRequestException", "Missing connectionId")
	requireMgmtError(t, e.do("POST", "/@groups/", strings.NewReader("x"), nil), 400, "BadRequestException", "Invalid group name")
	requireMgmtError(t, e.do("POST", "/@groups/a%0Ab", strings.NewReader("x"), nil), 400, "BadRequestException", "Invalid group name")
	requireMgmtError(t, e.do("POST", "/@groups/"+strings.Repeat("g", 129), strings.NewReader("x"), nil), 400, "BadRequestException", "Invalid group name")
	requireMgmtError(t, e.do("POST", "/@groups/room", strings.NewReader(strings.Repeat("x", 128<<10+1)), nil), 413, "PayloadTooLargeException", "")
	r = e.do("GET", "/prod/@groups/room", nil, nil)
	requireMgmtError(t, r, 403, "ForbiddenException", "No method found matching route @groups/{group} for http method GET.")
	assert.Equal(t, "POST", r.header.Get("Allow"))
	r = e.do("POST", "/prod/@groups/room/members/"+enc(a.id), nil, nil)
	requireMgmtError(t, r, 403, "ForbiddenException", "No method found matching route @groups/{group}/members/{connectionId} for http method POST.")
	assert.Equal(t, "DELETE, PUT", r.header.Get("Allow"))
	requireMgmtError(t, e.do("GET", "/@broadcast", nil, nil), 403, "ForbiddenException", "")

	// The same authentication as @connections: nothing happens without it.
	for name, hdr := range map[string]map[string]string{
		"no credentials": {"Authorization": ""},
		"wrong token":    {"Authorization": "Bearer nope"},
	} {
		t.Run(name, func(t *testing.T) {
			requireMgmtError(t, e.do("POST", "/prod/@groups/room", strings.NewReader("x"), hdr), 403, "ForbiddenException", "")
			requireMgmtError(t, e.do("PUT", "/prod/@groups/room/members/"+enc(a.id), nil, hdr), 403, "ForbiddenException", "")
			requireMgmtError(t, e.do("POST", "/prod/@broadcast", strings.NewReader("x"), hdr), 403, "ForbiddenException", "")
			requireMgmtError(t, e.do("GET", "/prod/@groups/room/members", nil, hdr), 403, "ForbiddenException", "")
		})
	}
	m, err = e.router.Groups().Members(context.Background(), "room")
	require.NoError(t, err)
	assert.Equal(t, []string{b.id}, m, "refused requests changed nothing")

	// @connections is unchanged, even for IDs that look like group paths.
	r = e.do("POST", "/@groups/@connections/"+enc(c.id), strings.NewReader("direct"), nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, "direct", c.read(t))
}

// TestManagementGroupsWithoutGroups: a ConnectionManager without groups
// answers the group paths as any unknown path.
func TestManagementGroupsWithoutGroups(t *testing.T) {
	r := newRouter(t, nil)
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	h := wsroute.NewManagementHandler(onlyConnections{r.Connections()}, &wsroute.ManagementOptions{BearerTokens: []string{mgmtToken}})
	req := httptest.NewRequest("POST", "/prod/@groups/room", strings.NewReader("x"))
	req.Header.Set("Authorization", "Bearer "+mgmtToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Contains(t, w.Body.String(), "No method found matching route prod/@groups/room")
}

// onlyConnections hides the Groups method of a router's ConnectionManager.
type onlyConnections struct{ wsroute.ConnectionManager }

func toJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// FuzzManagementGroupPaths sends arbitrary methods, paths and bodies to the
// management handler of a router with members in a group: never a 5xx, every
// error in API Gateway's shape.
func FuzzManagementGroupPaths(f *testing.F) {
	fuzzManagementHandler(f, []mgmtSeed{
		{"POST", "/prod/@groups/room", "hi"},
		{"GET", "/@groups/room/members", ""},
		{"PUT", "/@groups/room/members/AAAAAAAAAAAAAAA%3D", ""},
		{"DELETE", "/%40groups/r%2Fx/members/%40connections", ""},
		{"POST", "/@broadcast", "x"},
		{"GET", "/@groups//members/", ""},
		{"POST", "/@groups/%ZZ", "x"},
		{"PUT", "/@groups/@groups/members/members", ""},
	})
}
