package wsroute_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const (
	partnerKey   = "partner-key-0123456789abcdef"
	partnerKeyID = "k-partner"
)

// planEnv is a router whose API keys live in a usage plan store with a
// fake clock; "echo" echoes, and every event is recorded.
type planEnv struct {
	plans    *wsroute.UsagePlans
	router   *wsroute.Router
	clock    *fakeClock
	srv      string
	connects *recorder
	echoes   *recorder
	discs    *recorder
}

func newPlanEnv(t *testing.T, plan wsroute.UsagePlan) *planEnv {
	t.Helper()
	e := &planEnv{plans: &wsroute.UsagePlans{}, clock: &fakeClock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)},
		connects: newRecorder(), echoes: newRecorder(), discs: newRecorder()}
	wsroute.SetUsagePlansClock(e.plans, e.clock.now)
	plan.ID = "gold"
	require.NoError(t, e.plans.PutPlan(plan))
	require.NoError(t, e.plans.AddKey(wsroute.APIKey{ID: partnerKeyID, Value: partnerKey, PlanID: "gold"}))
	r := newRouter(t, &wsroute.Options{UsagePlans: e.plans})
	e.router = r
	r.Handle(wsroute.RouteConnect, e.connects)
	r.Handle(wsroute.RouteDisconnect, e.discs)
	r.HandleFunc("echo", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		_, _ = e.echoes.ServeEvent(ctx, req)
		return echo(ctx, req)
	})
	e.srv = wsURL(serve(t, r))
	return e
}

// connect dials with key and returns the connection, or the refusal.
func (e *planEnv) connect(t *testing.T, key string) (*websocket.Conn, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	h := http.Header{}
	if key != "" {
		h.Set("x-api-key", key)
	}
	c, resp, err := websocket.Dial(ctx, e.srv, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		require.NotNil(t, resp, "dial: %v", err)
		b, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, string(b)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, http.StatusSwitchingProtocols, ""
}

// ask sends a message to the echo route and returns the answer: the echo,
// or the error frame's message.
func ask(t *testing.T, c *websocket.Conn, body string) string {
	t.Helper()
	send(t, c, body)
	got := read(t, c)
	if got == body {
		return "echo"
	}
	m := mustJSON(t, got)
	return m["message"].(string)
}

const echoMsg = `{"action":"echo"}`

func TestUsagePlanThrottleBoundaries(t *testing.T) {
	// 2 requests per second, bursts of 3: the $connect and two messages
	// take the burst; then one request every 500 ms, exactly.
	e := newPlanEnv(t, wsroute.UsagePlan{Throttle: &wsroute.ThrottleSettings{RateLimit: 2, BurstLimit: 3}})
	c, status, _ := e.connect(t, partnerKey)
	require.Equal(t, http.StatusSwitchingProtocols, status)
	assert.Equal(t, "echo", ask(t, c, echoMsg))
	assert.Equal(t, "echo", ask(t, c, echoMsg))
	assert.Equal(t, "Too Many Requests", ask(t, c, echoMsg))
	e.clock.add(499 * time.Millisecond)
	assert.Equal(t, "Too Many Requests", ask(t, c, echoMsg), "1 ms before the next token")
	e.clock.add(time.Millisecond)
	assert.Equal(t, "echo", ask(t, c, echoMsg), "the token that arrived at 500 ms")
	assert.Equal(t, "Too Many Requests", ask(t, c, echoMsg))

	// A second connection with the same key shares the bucket: its
	// upgrade is refused with 429.
	_, status, body := e.connect(t, partnerKey)
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.JSONEq(t, `{"message":"Too Many Requests"}`, body)

	// After 1.5 s idle the bucket holds 3 tokens again, never more.
	e.clock.add(10 * time.Second)
	for range 3 {
		assert.Equal(t, "echo", ask(t, c, echoMsg))
	}
	assert.Equal(t, "Too Many Requests", ask(t, c, echoMsg))

	// The frame for a throttled message has API Gateway's shape, and the
	// connection stays open; refused messages never reached the route.
	e.clock.add(500 * time.Millisecond)
	send(t, c, `{"action":"nope"}`)
	frame := mustJSON(t, read(t, c))
	assert.Equal(t, "Forbidden", frame["message"], "an allowed message with no route")
	send(t, c, `{"action":"nope"}`)
	frame = mustJSON(t, read(t, c))
	assert.Equal(t, "Too Many Requests", frame["message"])
	assert.Len(t, frame["requestId"], 16)
	assert.NotEmpty(t, frame["connectionId"])
	assert.Len(t, e.echoes.ch, 6)
}

func TestUsagePlanQuotaBoundariesAndRollover(t *testing.T) {
	e := newPlanEnv(t, wsroute.UsagePlan{Quota: &wsroute.QuotaSettings{Limit: 4, Period: wsroute.QuotaDay}})
	c, status, _ := e.connect(t, partnerKey) // 1
	require.Equal(t, http.StatusSwitchingProtocols, status)
	for range 3 { // 2, 3, 4
		assert.Equal(t, "echo", ask(t, c, echoMsg))
	}
	assert.Equal(t, "Limit Exceeded", ask(t, c, echoMsg))
	u, err := e.plans.Usage(partnerKeyID)
	require.NoError(t, err)
	assert.Equal(t, wsroute.KeyUsage{Used: 4, Remaining: 0,
		PeriodStart: time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)}, u)

	_, status, body := e.connect(t, partnerKey)
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.JSONEq(t, `{"message":"Limit Exceeded"}`, body)

	// The last nanosecond of the day still counts against it; midnight UTC
	// starts a new period.
	e.clock.set(time.Date(2026, 3, 10, 23, 59, 59, 999999999, time.UTC))
	assert.Equal(t, "Limit Exceeded", ask(t, c, echoMsg))
	e.clock.set(time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC))
	for range 4 {
		assert.Equal(t, "echo", ask(t, c, echoMsg))
	}
	assert.Equal(t, "Limit Exceeded", ask(t, c, echoMsg))

	// A plan changed at runtime applies at once; the count is kept.
	require.NoError(t, e.plans.PutPlan(wsroute.UsagePlan{ID: "gold", Quota: &wsroute.QuotaSettings{Limit: 5, Period: wsroute.QuotaDay}}))
	assert.Equal(t, "echo", ask(t, c, echoMsg))
	assert.Equal(t, "Limit Exceeded", ask(t, c, echoMsg))
}

func TestUsagePlanIdentityOnEveryEvent(t *testing.T) {
	e := newPlanEnv(t, wsroute.UsagePlan{})
	c, status, _ := e.connect(t, partnerKey)
	require.Equal(t, http.StatusSwitchingProtocols, status)
	assert.Equal(t, "echo", ask(t, c, echoMsg))

	// GetConnection's identity stays API Gateway's: sourceIp and userAgent.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	e.echoes.mu.Lock()
	id := e.echoes.events[0].RequestContext.ConnectionID
	e.echoes.mu.Unlock()
	info, err := e.router.Connections().GetConnection(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, wsroute.Identity{SourceIP: "127.0.0.1", UserAgent: info.Identity.UserAgent}, info.Identity)

	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	for _, ev := range []*wsroute.Request{e.connects.next(t), e.echoes.next(t), e.discs.next(t)} {
		id := ev.RequestContext.Identity
		assert.Equal(t, partnerKey, id.APIKey, ev.RequestContext.EventType)
		assert.Equal(t, partnerKeyID, id.APIKeyID, ev.RequestContext.EventType)
		assert.Equal(t, "127.0.0.1", id.SourceIP)
	}
}

func TestUsagePlanMissingUnknownAndRevokedKeys(t *testing.T) {
	e := newPlanEnv(t, wsroute.UsagePlan{})
	for _, key := range []string{"", "not-a-key-0123456789abcdef", partnerKey + "x"} {
		_, status, body := e.connect(t, key)
		assert.Equal(t, http.StatusForbidden, status, "key %q", key)
		assert.JSONEq(t, `{"message":"Forbidden"}`, body)
	}
	assert.Empty(t, e.connects.ch, "$connect ran for a refused key")

	c, status, _ := e.connect(t, partnerKey)
	require.Equal(t, http.StatusSwitchingProtocols, status)
	e.connects.next(t)
	assert.Equal(t, "echo", ask(t, c, echoMsg))
	require.NoError(t, e.plans.RevokeKey(partnerKeyID))
	assert.ErrorIs(t, e.plans.RevokeKey(partnerKeyID), wsroute.ErrNoSuchAPIKey)

	// The open connection stays open, but its messages no longer reach a
	// route; a new connection is refused.
	assert.Equal(t, "Forbidden", ask(t, c, echoMsg))
	assert.Equal(t, "Forbidden", ask(t, c, echoMsg))
	_, status, _ = e.connect(t, partnerKey)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Len(t, e.echoes.ch, 1)
	assert.Empty(t, e.connects.ch)

	// A key added again is a new key: the old connection stays refused.
	require.NoError(t, e.plans.AddKey(wsroute.APIKey{ID: partnerKeyID, Value: partnerKey, PlanID: "gold"}))
	assert.Equal(t, "Forbidden", ask(t, c, echoMsg))
	c2, status, _ := e.connect(t, partnerKey)
	require.Equal(t, http.StatusSwitchingProtocols, status)
	assert.Equal(t, "echo", ask(t, c2, echoMsg))
}

func TestUsagePlansStore(t *testing.T) {
	var u wsroute.UsagePlans
	assert.ErrorIs(t, u.AddKey(wsroute.APIKey{ID: "a", Value: partnerKey, PlanID: "none"}), wsroute.ErrNoSuchPlan)
	require.NoError(t, u.PutPlan(wsroute.UsagePlan{ID: "p"}))
	assert.Error(t, u.AddKey(wsroute.APIKey{ID: "a", Value: "short", PlanID: "p"}), "values under 20 characters")
	require.NoError(t, u.AddKey(wsroute.APIKey{ID: "a", Value: partnerKey, PlanID: "p"}))
	assert.ErrorIs(t, u.AddKey(wsroute.APIKey{ID: "a", Value: partnerKey + "2", PlanID: "p"}), wsroute.ErrAPIKeyExists)
	assert.ErrorIs(t, u.AddKey(wsroute.APIKey{ID: "b", Value: partnerKey, PlanID: "p"}), wsroute.ErrAPIKeyExists)
	assert.ErrorIs(t, u.DeletePlan("p"), wsroute.ErrPlanInUse)
	u2, err := u.Usage("a")
	require.NoError(t, err)
	assert.Equal(t, int64(-1), u2.Remaining, "no quota")
	_, err = u.Usage("zz")
	assert.ErrorIs(t, err, wsroute.ErrNoSuchAPIKey)
	require.NoError(t, u.RevokeKey("a"))
	require.NoError(t, u.DeletePlan("p"))
	assert.ErrorIs(t, u.DeletePlan("p"), wsroute.ErrNoSuchPlan)

	for _, bad := range []wsroute.UsagePlan{
		{},
		{ID: "x", Throttle: &wsroute.ThrottleSettings{RateLimit: 0, BurstLimit: 1}},
		{ID: "x", Throttle: &wsroute.ThrottleSettings{RateLimit: 1, BurstLimit: 0}},
		{ID: "x", Quota: &wsroute.QuotaSettings{Limit: 0, Period: wsroute.QuotaDay}},
		{ID: "x", Quota: &wsroute.QuotaSettings{Limit: 1, Period: "YEAR"}},
		{ID: "x", Quota: &wsroute.QuotaSettings{Limit: 1, Period: wsroute.QuotaDay, Offset: 1}},
		{ID: "x", Quota: &wsroute.QuotaSettings{Limit: 1, Period: wsroute.QuotaWeek, Offset: 7}},
		{ID: "x", Quota: &wsroute.QuotaSettings{Limit: 1, Period: wsroute.QuotaMonth, Offset: 28}},
	} {
		assert.Error(t, u.PutPlan(bad), "%+v", bad)
	}
}

func TestUsagePlansOptionConflicts(t *testing.T) {
	_, err := wsroute.New(&wsroute.Options{UsagePlans: &wsroute.UsagePlans{}, APIKeys: []string{partnerKey}})
	assert.Error(t, err)
	_, err = wsroute.New(&wsroute.Options{
		IAM: &wsroute.IAMAuth{Credentials: map[string]wsroute.IAMCredential{"AKID": {SecretAccessKey: "s"}}},
		Authorizer: func(context.Context, *wsroute.Request) (*wsroute.AuthorizerResult, error) {
			return nil, errors.New("unused")
		},
	})
	assert.Error(t, err)
	_, err = wsroute.New(&wsroute.Options{IAM: &wsroute.IAMAuth{}})
	assert.Error(t, err, "IAM without credentials")
	_, err = wsroute.New(&wsroute.Options{IAM: &wsroute.IAMAuth{Credentials: map[string]wsroute.IAMCredential{"AKID": {}}}})
	assert.Error(t, err, "a credential without a secret")
}

// TestUsagePlanKeyFromAuthorizer: with API Gateway's
// $context.authorizer.usageIdentifierKey, the key is the one the authorizer
// returns, not the header.
func TestUsagePlanKeyFromAuthorizer(t *testing.T) {
	plans := &wsroute.UsagePlans{}
	require.NoError(t, plans.PutPlan(wsroute.UsagePlan{ID: "p", Quota: &wsroute.QuotaSettings{Limit: 2, Period: wsroute.QuotaMonth}}))
	require.NoError(t, plans.AddKey(wsroute.APIKey{ID: "tenant-1", Value: partnerKey, PlanID: "p"}))
	connects := newRecorder()
	r := newRouter(t, &wsroute.Options{
		UsagePlans:                plans,
		APIKeySelectionExpression: "$context.authorizer.usageIdentifierKey",
		Authorizer: func(_ context.Context, req *wsroute.Request) (*wsroute.AuthorizerResult, error) {
			if req.QueryStringParameters["tenant"] != "1" {
				return &wsroute.AuthorizerResult{PrincipalID: "anonymous"}, nil
			}
			return &wsroute.AuthorizerResult{PrincipalID: "t1", UsageIdentifierKey: partnerKey}, nil
		},
	})
	r.Handle(wsroute.RouteConnect, connects)
	r.HandleFunc("echo", echo)
	srv := serve(t, r)
	dialq := func(q string, h http.Header) (*websocket.Conn, int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, wsURL(srv)+q, &websocket.DialOptions{HTTPHeader: h})
		if err != nil {
			b, _ := io.ReadAll(resp.Body)
			return nil, resp.StatusCode, string(b)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c, http.StatusSwitchingProtocols, ""
	}
	// The header is not where the key comes from.
	_, status, body := dialq("", http.Header{"X-Api-Key": {partnerKey}})
	assert.Equal(t, http.StatusForbidden, status)
	assert.JSONEq(t, `{"message":"Forbidden"}`, body)

	c, status, _ := dialq("?tenant=1", nil)
	require.Equal(t, http.StatusSwitchingProtocols, status)
	ev := connects.next(t)
	assert.Equal(t, "tenant-1", ev.RequestContext.Identity.APIKeyID)
	assert.Equal(t, "t1", ev.RequestContext.Authorizer["principalId"])
	assert.Equal(t, "echo", ask(t, c, echoMsg))
	assert.Equal(t, "Limit Exceeded", ask(t, c, echoMsg))

	for _, bad := range []*wsroute.Options{
		{APIKeySelectionExpression: "$request.header.key"},
		{APIKeySelectionExpression: "$context.authorizer.usageIdentifierKey", UsagePlans: plans},
	} {
		_, err := wsroute.New(bad)
		assert.Error(t, err)
	}
}
