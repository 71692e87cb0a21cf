package wsnats_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wsroute/wsroute"
)

const (
	testKeyID  = "AKIAWSROUTETEST00001"
	testSecret = "wsroute-nats-test-secret"
	testToken  = "wsroute-nats-test-token"
)

// managementAPI serves n's ConnectionManager over the @connections API,
// authenticated with SigV4 or a bearer token, under the stage /prod. Each
// request's ctx ends after timeout, as behind a server with a deadline.
func managementAPI(t testing.TB, n *node, timeout time.Duration) string {
	t.Helper()
	h := wsroute.NewManagementHandler(n.cm(), &wsroute.ManagementOptions{
		Credentials:  map[string]string{testKeyID: testSecret},
		BearerTokens: []string{testToken},
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/prod"
}

// bearerPost posts data to id through the management API at endpoint and
// returns the status and x-amzn-ErrorType.
func bearerPost(t testing.TB, endpoint, id, data string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint+"/@connections/"+id, strings.NewReader(data))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType")
}

// TestManagementAPIAcrossNodes calls the management API of node A with the
// AWS SDK for Go, signed with SigV4, about a client of node C.
func TestManagementAPIAcrossNodes(t *testing.T) {
	nodes := threeNodes(t, true)
	a, c := nodes[0], nodes[2]
	api := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		BaseEndpoint: aws.String(managementAPI(t, a, eventually)),
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider(testKeyID, testSecret, ""),
		HTTPClient:   &http.Client{Timeout: eventually},
	})
	cl := dial(t, c)
	ctx := ctxTimeout(t, eventually)

	_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(cl.id), Data: []byte(`{"hello":"from A"}`)})
	require.NoError(t, err)
	assert.Equal(t, `{"hello":"from A"}`, cl.read())

	out, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(cl.id)})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", aws.ToString(out.Identity.SourceIp))
	require.NotNil(t, out.ConnectedAt)

	_, err = api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(cl.id)})
	require.NoError(t, err)
	assert.Equal(t, websocket.StatusNormalClosure, cl.closeStatus())
	assert.Equal(t, cl.id, <-c.disc)

	_, err = api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(cl.id), Data: []byte("x")})
	var gone *types.GoneException
	require.ErrorAs(t, err, &gone)
	assert.Equal(t, 1, c.disconnectCount(cl.id))
	assert.Zero(t, a.disconnectCount(cl.id))
}
