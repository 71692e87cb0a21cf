package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/awslambda"
	"github.com/wsroute/wsroute/awslambda/rie"
	"github.com/wsroute/wsroute/wsroutetest"
)

// TestPythonRuntimeReportsErrors: an exception in a handler run by
// bootstrap.py is reported through the Runtime API as Lambda's runtimes
// report it, and reaches the Invoker as a function error (502).
func TestPythonRuntimeReportsErrors(t *testing.T) {
	emulatorPath, python := pythonEmulator(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "failing.py"), []byte(`
def handler(event, context):
    if event["requestContext"]["routeKey"] == "boom":
        raise ValueError("no such thing")
    return {"statusCode": 200, "body": context.aws_request_id and "ok"}
`), 0o600))
	pyDir, err := filepath.Abs("python")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := rie.Start(ctx, rie.Config{
		Emulator: emulatorPath,
		Command:  []string{python, filepath.Join(pyDir, "bootstrap.py"), "failing.handler"},
		Env:      []string{"PYTHONPATH=" + dir, "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=y", "AWS_REGION=us-east-1"},
		Dir:      dir,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })

	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(e.URL), HTTPClient: &http.Client{Transport: tr},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "x", SecretAccessKey: "y"}, nil
		})})
	h := awslambda.New(client, &awslambda.Options{MaxConcurrency: 1}).Handler(rie.FunctionName)
	evs := wsroutetest.NewEvents()

	resp, err := h.ServeEvent(ctx, evs.MessageRoute("fine", "{}"))
	require.NoError(t, err)
	assert.Equal(t, "ok", resp.Body)

	_, err = h.ServeEvent(ctx, evs.MessageRoute("boom", "{}"))
	var ie *wsroute.IntegrationError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, http.StatusBadGateway, ie.StatusCode)
	var fe *awslambda.FunctionError
	require.True(t, errors.As(err, &fe), "%v", err)
	assert.Equal(t, "ValueError", fe.ErrorType)
	assert.Equal(t, "no such thing", fe.ErrorMessage)

	// The runtime goes on serving.
	resp, err = h.ServeEvent(ctx, evs.MessageRoute("fine", "{}"))
	require.NoError(t, err)
	assert.Equal(t, "ok", resp.Body)
}
