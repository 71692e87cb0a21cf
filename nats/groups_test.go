package wsnats_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wsroute/wsroute"
)

// A group name that is no NATS subject token: dots, wildcards, a space, a
// percent sign and non-ASCII letters.
const oddGroup = "room:a.b *> 100% ünïcødé"

func groups(n *node) wsroute.GroupManager { return n.router.Groups() }

// sortedIDs returns the IDs of cs, sorted.
func sortedIDs(cs ...*client) []string {
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.id)
	}
	slices.Sort(ids)
	return ids
}

// waitMembers waits until n's Members of group is want: a node that died
// is asked until DeadAfter has passed, and meanwhile Members fails.
func waitMembers(t *testing.T, n *node, group string, want []string) {
	t.Helper()
	var got []string
	var err error
	require.Eventually(t, func() bool {
		got, err = groups(n).Members(ctxTimeout(t, 5*time.Second), group)
		return err == nil && slices.Equal(got, want)
	}, eventually, 20*time.Millisecond, "members seen by %s: %v, %v; want %v", n.name, got, err, want)
}

// TestGroupAcrossNodes puts members on every node, and posts to the group
// from every node: each member gets each post exactly once, in order, and
// no one else gets it.
func TestGroupAcrossNodes(t *testing.T) {
	for _, clustered := range []bool{false, true} {
		t.Run(map[bool]string{false: "one NATS server", true: "three-server NATS cluster"}[clustered], func(t *testing.T) {
			nodes := threeNodes(t, clustered)
			ctx := ctxTimeout(t, eventually)
			var members, others []*client
			for _, n := range nodes {
				for range 2 {
					c := dial(t, n)
					require.NoError(t, groups(n).Join(ctx, oddGroup, c.id))
					members = append(members, c)
				}
				others = append(others, dial(t, n))
			}
			for _, n := range nodes {
				waitMembers(t, n, oddGroup, sortedIDs(members...))
			}

			for _, from := range nodes {
				first, second := "first from "+from.name, "second from "+from.name
				res, err := groups(from).PostToGroup(ctx, oddGroup, []byte(first))
				require.NoError(t, err)
				assert.Equal(t, wsroute.PostResult{Delivered: 2, Published: true}, res, "this node's members are counted")
				_, err = groups(from).PostToGroup(ctx, oddGroup, []byte(second))
				require.NoError(t, err)
				for _, c := range members {
					// A duplicate of the first would come before the second.
					assert.Equal(t, first, c.read(), "member on %s", c.on.name)
					assert.Equal(t, second, c.read(), "member on %s", c.on.name)
				}
			}
			// The others got none of it: their next frame is this one.
			for _, c := range others {
				require.NoError(t, nodes[0].cm().PostToConnection(ctx, c.id, []byte("direct")))
				assert.Equal(t, "direct", c.read(), "non-member on %s", c.on.name)
			}
		})
	}
}

// TestGroupRemoteJoinLeave joins and leaves clients of other nodes through
// a node's GroupManager.
func TestGroupRemoteJoinLeave(t *testing.T) {
	nodes := threeNodes(t, true)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := ctxTimeout(t, eventually)
	onB, onC, control := dial(t, b), dial(t, c), dial(t, c)

	require.NoError(t, groups(a).Join(ctx, "g", onB.id))
	require.NoError(t, groups(a).Join(ctx, "g", onC.id))
	require.NoError(t, groups(b).Join(ctx, "g", control.id))
	require.NoError(t, groups(a).Join(ctx, "g", onC.id), "joining twice does nothing")
	for _, n := range nodes {
		waitMembers(t, n, "g", sortedIDs(onB, onC, control))
	}
	res, err := groups(a).PostToGroup(ctx, "g", []byte("to all three"))
	require.NoError(t, err)
	assert.Equal(t, wsroute.PostResult{Published: true}, res, "A holds no member")
	for _, cl := range []*client{onB, onC, control} {
		assert.Equal(t, "to all three", cl.read())
	}

	// A leaves C's client out; C still has a member, so it still gets posts.
	require.NoError(t, groups(a).Leave(ctx, "g", onC.id))
	require.NoError(t, groups(a).Leave(ctx, "g", onC.id), "leaving twice does nothing")
	waitMembers(t, b, "g", sortedIDs(onB, control))
	_, err = groups(b).PostToGroup(ctx, "g", []byte("after the leave"))
	require.NoError(t, err)
	assert.Equal(t, "after the leave", onB.read())
	assert.Equal(t, "after the leave", control.read())
	// C fanned out to control, and not to onC: onC's next frame is this.
	require.NoError(t, a.cm().PostToConnection(ctx, onC.id, []byte("direct")))
	assert.Equal(t, "direct", onC.read())

	// IDs no node holds.
	require.ErrorIs(t, groups(a).Join(ctx, "g", "AAAAAAAAAAAAAAA="), wsroute.ErrGone)
	require.NoError(t, groups(a).Leave(ctx, "g", "AAAAAAAAAAAAAAA="))
	require.ErrorIs(t, groups(a).Join(ctx, "", onB.id), wsroute.ErrInvalidGroup)
}

// TestGroupMemberLeaves closes a member's socket: it leaves every group on
// every node's view, and the others keep getting posts.
func TestGroupMemberLeaves(t *testing.T) {
	nodes := threeNodes(t, false)
	a, b := nodes[0], nodes[1]
	ctx := ctxTimeout(t, eventually)
	stays, leaves := dial(t, a), dial(t, b)
	subsBefore := b.bp.Conn().NumSubscriptions()
	require.NoError(t, groups(a).Join(ctx, "g", stays.id))
	require.NoError(t, groups(a).Join(ctx, "g", leaves.id))
	waitMembers(t, nodes[2], "g", sortedIDs(stays, leaves))
	assert.Equal(t, subsBefore+1, b.bp.Conn().NumSubscriptions(), "one subscription for the group")

	require.NoError(t, leaves.ws.CloseNow())
	assert.Equal(t, leaves.id, <-b.disc)
	for _, n := range nodes {
		waitMembers(t, n, "g", []string{stays.id})
	}
	res, err := groups(b).PostToGroup(ctx, "g", []byte("still on"))
	require.NoError(t, err)
	assert.Equal(t, wsroute.PostResult{Published: true}, res, "B has no member left")
	assert.Equal(t, "still on", stays.read())
	// B unsubscribed from the group at once, and from the connection's
	// subject DeadAfter later.
	require.Eventually(t, func() bool { return b.bp.Conn().NumSubscriptions() == subsBefore-1 },
		eventually, 20*time.Millisecond, "B keeps a subscription")
}

// TestGroupNodeDies kills a node without a goodbye: its members drop out of
// the others' view (after DeadAfter) and stop receiving their posts, while
// the node still serves its own members locally and reports that it could
// not publish.
func TestGroupNodeDies(t *testing.T) {
	nodes := threeNodes(t, false)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := ctxTimeout(t, eventually)
	ma, mb, mc := dial(t, a), dial(t, b), dial(t, c)
	for _, m := range []*client{ma, mb, mc} {
		require.NoError(t, groups(m.on).Join(ctx, "g", m.id))
	}
	waitMembers(t, a, "g", sortedIDs(ma, mb, mc))

	b.bp.Conn().Close() // no goodbye: the server just sees the socket close
	waitMembers(t, a, "g", sortedIDs(ma, mc))
	waitMembers(t, c, "g", sortedIDs(ma, mc))

	_, err := groups(a).PostToGroup(ctx, "g", []byte("without B"))
	require.NoError(t, err)
	assert.Equal(t, "without B", ma.read())
	assert.Equal(t, "without B", mc.read())

	// B still has its member; a post there reaches it, and says that the
	// other nodes could not be told.
	res, err := groups(b).PostToGroup(ctx, "g", []byte("B alone"))
	require.ErrorIs(t, err, wsroute.ErrBackplaneUnavailable)
	assert.Equal(t, wsroute.PostResult{Delivered: 1}, res)
	// The first frame B's member gets since the kill is B's own post.
	assert.Equal(t, "B alone", mb.read())
	_, err = groups(b).Members(ctx, "g")
	require.ErrorIs(t, err, wsroute.ErrBackplaneUnavailable)
}

// TestBroadcastAcrossNodes broadcasts from each node: every connection of
// every node gets each broadcast exactly once.
func TestBroadcastAcrossNodes(t *testing.T) {
	for _, clustered := range []bool{false, true} {
		t.Run(map[bool]string{false: "one NATS server", true: "three-server NATS cluster"}[clustered], func(t *testing.T) {
			nodes := threeNodes(t, clustered)
			ctx := ctxTimeout(t, eventually)
			var all []*client
			for _, n := range nodes {
				all = append(all, dial(t, n), dial(t, n))
			}
			for _, from := range nodes {
				first, second := "broadcast from "+from.name, "again from "+from.name
				res, err := groups(from).Broadcast(ctx, []byte(first))
				require.NoError(t, err)
				assert.Equal(t, wsroute.PostResult{Delivered: 2, Published: true}, res)
				_, err = groups(from).Broadcast(ctx, []byte(second))
				require.NoError(t, err)
				for _, c := range all {
					assert.Equal(t, first, c.read(), "client of %s", c.on.name)
					assert.Equal(t, second, c.read(), "client of %s", c.on.name)
				}
			}
		})
	}
}

// bearerDo calls the management API and returns the status and body.
func bearerDo(t *testing.T, method, u, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	return do(t, req)
}

// do sends req and returns the status and body.
func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestGroupManagementAPIAcrossNodes drives groups of clients on B and C
// through the management API of A (and of B).
func TestGroupManagementAPIAcrossNodes(t *testing.T) {
	nodes := threeNodes(t, true)
	a, b, c := nodes[0], nodes[1], nodes[2]
	apiA, apiB := managementAPI(t, a, eventually), managementAPI(t, b, eventually)
	onB, onC := dial(t, b), dial(t, c)
	g := url.PathEscape(oddGroup)
	member := func(api string, cl *client) string { return api + "/@groups/" + g + "/members/" + cl.id }

	for _, cl := range []*client{onB, onC} {
		status, body := bearerDo(t, http.MethodPut, member(apiA, cl), "")
		require.Equal(t, http.StatusNoContent, status, body)
	}
	var list struct{ Members []string }
	require.Eventually(t, func() bool {
		status, body := bearerDo(t, http.MethodGet, apiB+"/@groups/"+g+"/members", "")
		require.Equal(t, http.StatusOK, status, body)
		require.NoError(t, json.Unmarshal([]byte(body), &list))
		return slices.Equal(list.Members, sortedIDs(onB, onC))
	}, eventually, 20*time.Millisecond)

	status, body := bearerDo(t, http.MethodPost, apiA+"/@groups/"+g, "via A")
	require.Equal(t, http.StatusOK, status, body)
	assert.JSONEq(t, `{"delivered":0,"skipped":0,"gone":0,"published":true}`, body)
	assert.Equal(t, "via A", onB.read())
	assert.Equal(t, "via A", onC.read())

	status, body = bearerDo(t, http.MethodDelete, member(apiA, onC), "")
	require.Equal(t, http.StatusNoContent, status, body)
	status, body = bearerDo(t, http.MethodPost, apiB+"/@groups/"+g, "via B")
	require.Equal(t, http.StatusOK, status, body)
	assert.JSONEq(t, `{"delivered":1,"skipped":0,"gone":0,"published":true}`, body)
	assert.Equal(t, "via B", onB.read())

	status, body = bearerDo(t, http.MethodPost, apiA+"/@broadcast", "to everyone")
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, "to everyone", onB.read())
	assert.Equal(t, "to everyone", onC.read(), "onC left the group: its next frame is the broadcast")

	status, body = bearerDo(t, http.MethodPut, apiA+"/@groups/g/members/AAAAAAAAAAAAAAA=", "")
	assert.Equal(t, http.StatusGone, status, body)
	status, body = bearerDo(t, http.MethodDelete, apiA+"/@groups/g/members/AAAAAAAAAAAAAAA=", "")
	assert.Equal(t, http.StatusNoContent, status, body)
}

// TestGroupJoinRace joins and leaves one group from many goroutines on
// several nodes at once: when it settles, each node listens to the group
// exactly when it has members, so a post reaches the members left, once.
func TestGroupJoinRace(t *testing.T) {
	nodes := threeNodes(t, false)
	ctx := ctxTimeout(t, eventually)
	var cls []*client
	for _, n := range nodes {
		for range 3 {
			cls = append(cls, dial(t, n))
		}
	}
	subsBefore := make([]int, len(nodes))
	for i, n := range nodes {
		subsBefore[i] = n.bp.Conn().NumSubscriptions()
	}
	errs := make(chan error, len(cls))
	for i, cl := range cls {
		go func() {
			var err error
			for j := range 50 {
				from := nodes[(i+j)%len(nodes)]
				if err = groups(from).Join(ctx, "race", cl.id); err == nil {
					err = groups(from).Leave(ctx, "race", cl.id)
				}
				if err != nil {
					break
				}
			}
			if err == nil && i%2 == 0 {
				err = groups(nodes[i%len(nodes)]).Join(ctx, "race", cl.id) // the even ones stay
			}
			errs <- err
		}()
	}
	for range cls {
		require.NoError(t, <-errs)
	}
	var stay []*client
	for i, cl := range cls {
		if i%2 == 0 {
			stay = append(stay, cl)
		}
	}
	waitMembers(t, nodes[0], "race", sortedIDs(stay...))
	for i, n := range nodes {
		assert.Equal(t, subsBefore[i]+1, n.bp.Conn().NumSubscriptions(), "node %s: one subscription for the group", n.name)
	}
	_, err := groups(nodes[1]).PostToGroup(ctx, "race", []byte("one"))
	require.NoError(t, err)
	_, err = groups(nodes[1]).PostToGroup(ctx, "race", []byte("two"))
	require.NoError(t, err)
	for _, cl := range stay {
		assert.Equal(t, "one", cl.read())
		assert.Equal(t, "two", cl.read())
	}
	for i, cl := range cls {
		if i%2 == 1 {
			require.NoError(t, nodes[0].cm().PostToConnection(ctx, cl.id, []byte("direct")))
			assert.Equal(t, "direct", cl.read(), "a client that left")
		}
	}
}
