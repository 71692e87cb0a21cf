package wsroute_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// TestManagementThrottle: a management call over its limit gets 429
// LimitExceededException and does not reach the ConnectionManager; callers
// signing with different access keys have buckets of their own, and the
// total holds for all of them.
func TestManagementThrottle(t *testing.T) {
	clock := newTestClock()
	th := &wsroute.ManagementThrottle{
		PerCaller: &wsroute.ThrottleSettings{RateLimit: 10, BurstLimit: 2},
		Total:     &wsroute.ThrottleSettings{RateLimit: 10, BurstLimit: 3},
	}
	wsroute.SetManagementThrottleClock(th, clock.now)
	mopts := sigv4Options()
	mopts.Throttle = th
	e := newMgmtEnv(t, nil, mopts)
	c := e.dial("ua")
	path := "/prod/@connections/" + c.id
	key1, key2 := newMgmtSigner(), newMgmtSigner()
	key2.keyID, key2.secret = "AKIAOTHER", "other"

	for i := range 2 {
		require.Equal(t, http.StatusOK, e.doSigned(key1, http.MethodPost, path, "hello", nil).status, "call %d", i+1)
		require.Equal(t, "hello", c.read(t))
	}
	r := e.doSigned(key1, http.MethodPost, path, "over", nil)
	requireMgmtError(t, r, http.StatusTooManyRequests, "LimitExceededException", "Too Many Requests")
	require.Equal(t, http.StatusOK, e.doSigned(key2, http.MethodGet, path, "", nil).status, "another caller")
	r = e.doSigned(key2, http.MethodGet, path, "", nil)
	requireMgmtError(t, r, http.StatusTooManyRequests, "LimitExceededException", "Too Many Requests") // total: 3

	clock.advance(99 * time.Millisecond)
	requireMgmtError(t, e.doSigned(key2, http.MethodGet, path, "", nil), http.StatusTooManyRequests, "LimitExceededException", "")
	clock.advance(time.Millisecond)
	require.Equal(t, http.StatusOK, e.doSigned(key1, http.MethodPost, path, "later", nil).status, "a token 100 ms later")
	// The throttled "over" never reached the connection.
	require.Equal(t, "later", c.read(t))
}

// TestManagementThrottleInvalid: invalid settings make NewManagementHandler
// panic, as every invalid management option does.
func TestManagementThrottleInvalid(t *testing.T) {
	cm := newRouter(t, nil).Connections()
	for _, th := range []*wsroute.ManagementThrottle{
		{Total: &wsroute.ThrottleSettings{RateLimit: 0, BurstLimit: 1}},
		{PerCaller: &wsroute.ThrottleSettings{RateLimit: 1, BurstLimit: 0}},
		{MaxCallers: -1},
	} {
		func() {
			defer func() {
				p := recover()
				require.NotNil(t, p)
				require.Contains(t, p, "wsroute: NewManagementHandler: ")
			}()
			wsroute.NewManagementHandler(cm,
				&wsroute.ManagementOptions{InsecureSkipAuthentication: true, Throttle: th})
		}()
	}
}
