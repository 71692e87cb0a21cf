package awslambda_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/wsroute/wsroute/awslambda/rie"
	"go.uber.org/goleak"
)

// buildDir holds the binaries the tests build: the emulator and the Go
// function. It lives as long as the test binary.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "awslambda-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		// No goroutine may outlive the tests.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var builds struct {
	once         sync.Once
	rie, fn, log string
	err          error
}

// binaries builds, once per test binary, the Runtime Interface Emulator from
// the Go module proxy and the aws-lambda-go test function. Where it cannot
// (not Linux, no go command, no proxy) the test skips, except in CI.
func binaries(t *testing.T) (emulator, function string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		skipOrFail(t, "the Runtime Interface Emulator runs on Linux only")
	}
	builds.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		builds.rie, builds.err = rie.Build(ctx, buildDir)
		if builds.err != nil {
			return
		}
		builds.fn = filepath.Join(buildDir, "testfunction")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", builds.fn, "./internal/testfunction")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			builds.err = fmt.Errorf("go build ./internal/testfunction: %v\n%s", err, out)
		}
	})
	if builds.err != nil {
		skipOrFail(t, "cannot build the emulator or the function: "+builds.err.Error())
	}
	return builds.rie, builds.fn
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(why + " (and CI must not skip)")
	}
	t.Skip(why)
}

// startFunction runs the Go test function under a new emulator, with env
// added, for the length of the test.
func startFunction(t *testing.T, env ...string) *rie.Emulator {
	t.Helper()
	emulator, function := binaries(t)
	out := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := rie.Start(ctx, rie.Config{
		Emulator: emulator,
		Command:  []string{function},
		Env:      append([]string{"AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=us-east-1"}, env...),
		Dir:      t.TempDir(),
		Output:   out,
	})
	if err != nil {
		t.Fatalf("starting the emulator: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		_ = e.Close()
		if t.Failed() {
			t.Logf("emulator output:\n%s", out.String())
		}
	})
	// Start the function now, so that a loaded machine's slow first start
	// does not count against a WebSocket client's handshake timeout.
	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	defer wcancel()
	req, err := http.NewRequestWithContext(wctx, http.MethodPost, e.URL+"/2015-03-31/functions/function/invocations",
		strings.NewReader(`{"requestContext":{"routeKey":"warm-up"},"body":"{}"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("warming the function up: %v\n%s", err, out.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if !strings.Contains(string(body), "unknown action") {
		t.Fatalf("warming the function up: %s\n%s", body, out.String())
	}
	return e
}

// lambdaClient returns a real Lambda client for endpoint, with static
// credentials, whose idle connections close when the test ends.
func lambdaClient(t testing.TB, endpoint string) *lambda.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return lambda.New(lambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   &http.Client{Transport: tr},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}, nil
		}),
	})
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func jsonEncoder(w io.Writer) *json.Encoder { return json.NewEncoder(w) }
