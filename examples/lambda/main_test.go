package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wsroute/wsroute/awslambda/rie"
	"github.com/wsroute/wsroute/wsroutetest"
	"go.uber.org/goleak"
)

var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "example-lambda-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(why + " (and CI must not skip)")
	}
	t.Skip(why)
}

var emulator struct {
	once sync.Once
	path string
	err  error
}

// pythonWithBoto3 finds a python3 that can import boto3: the one on PATH,
// else Debian's.
func pythonWithBoto3() string {
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import boto3").Run() == nil {
			return path
		}
	}
	return ""
}

// pythonEmulator returns the emulator, built once per test binary, and a
// python3 with boto3. Where either is missing the test skips, except in CI.
func pythonEmulator(t *testing.T) (emulatorPath, python string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		skipOrFail(t, "the Runtime Interface Emulator runs on Linux only")
	}
	if python = pythonWithBoto3(); python == "" {
		skipOrFail(t, "no python3 with boto3 (Debian: apt-get install python3-boto3)")
	}
	emulator.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		emulator.path, emulator.err = rie.Build(ctx, buildDir)
	})
	if emulator.err != nil {
		skipOrFail(t, "cannot build the emulator: "+emulator.err.Error())
	}
	return emulator.path, python
}

// startApp serves the example with backend on an httptest server for the
// length of the test.
func startApp(t *testing.T, backend string) (wsURL string, output *strings.Builder) {
	t.Helper()
	cfg := config{backend: backend, stage: "dev", pyDir: "python", keyID: "AKIAEXAMPLETEST", secret: "example-secret",
		output: io.Discard}
	out := &syncWriter{}
	cfg.output = out
	if backend == "python" {
		cfg.emulator, cfg.python = pythonEmulator(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := newApp(ctx, cfg)
	require.NoError(t, err)
	if a.emulator != nil {
		// The function's first invocation starts Python and imports boto3,
		// which can take longer than a WebSocket client waits for a
		// handshake: start it now.
		warmUp(t, a.emulator.URL)
	}
	srv := httptest.NewServer(a.handler)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, a.Close(ctx))
		srv.Close()
		if t.Failed() {
			t.Logf("emulator and function output:\n%s", out.String())
		}
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/dev", &out.b
}

// warmUp invokes the function once with a $connect event.
func warmUp(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/2015-03-31/functions/function/invocations",
		strings.NewReader(`{"requestContext":{"routeKey":"$connect","eventType":"CONNECT","connectionId":"warm-up","stage":"dev","domainName":"127.0.0.1"}}`))
	require.NoError(t, err)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.JSONEq(t, `{"statusCode":200}`, string(body))
}

type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestChat speaks the chat protocol to each backend through real sockets:
// the Python handler under the Runtime Interface Emulator, invoked through
// the Lambda Invoke API, and the aws-lambda-go handler in process. Both call
// back through the management API with SigV4 (boto3 and aws-sdk-go-v2).
func TestChat(t *testing.T) {
	for _, backend := range []string{"python", "go"} {
		t.Run(backend, func(t *testing.T) {
			url, _ := startApp(t, backend)
			ctx := context.Background()
			dial := func() *wsroutetest.Client {
				c := wsroutetest.Dial(t, url, nil)
				c.Timeout = 30 * time.Second
				return c
			}
			alice, bob, other := dial(), dial(), dial()

			alice.SendText(ctx, `{"action":"registerUser","userId":"alice"}`)
			alice.ExpectText(ctx, `{"type":"registrationSuccess","userId":"alice"}`)
			bob.SendText(ctx, `{"action":"registerUser","userId":"bob"}`)
			bob.ExpectText(ctx, `{"type":"registrationSuccess","userId":"bob"}`)

			alice.SendText(ctx, `{"action":"sendPrivateMessage","targetUserId":"bob","message":"hi"}`)
			bob.ExpectText(ctx, `{"type":"privateMessage","fromUserId":"alice","message":"hi"}`)

			alice.SendText(ctx, `{"action":"sendPrivateMessage","targetUserId":"carol","message":"hi"}`)
			alice.ExpectText(ctx, `{"type":"error","code":"unknownUser","message":"No user \"carol\" is online.","action":"sendPrivateMessage","targetUserId":"carol"}`)
			other.SendText(ctx, `{"action":"sendPrivateMessage","targetUserId":"bob","message":"hi"}`)
			other.ExpectText(ctx, `{"type":"error","code":"notRegistered","message":"Register a user ID first.","action":"sendPrivateMessage","targetUserId":"bob"}`)
			other.SendText(ctx, `{"action":"registerUser","userId":"alice"}`)
			other.ExpectText(ctx, `{"type":"error","code":"userIdTaken","message":"The user ID \"alice\" is taken: choose another one.","action":"registerUser"}`)
			other.SendText(ctx, `{"action":"registerUser","userId":"no spaces"}`)
			other.ExpectText(ctx, `{"type":"error","code":"invalidRequest","message":"userId must be 1 to 32 letters, digits, '_', '.' or '-'.","action":"registerUser"}`)
			other.SendText(ctx, `{"action":"dance"}`)
			other.ExpectText(ctx, `{"type":"error","code":"unknownAction","message":"Unknown action \"dance\": use one of registerUser, sendPrivateMessage, join, leave, sendMessage.","action":"dance"}`)
			other.SendText(ctx, `not json`)
			other.ExpectText(ctx, `{"type":"error","code":"invalidRequest","message":"Frames must be JSON objects with an \"action\" field."}`)

			// Many events at once: the emulator takes one at a time.
			var wg sync.WaitGroup
			for _, c := range []*wsroutetest.Client{alice, bob, other} {
				wg.Go(func() { c.SendText(ctx, `{"action":"sendPrivateMessage","targetUserId":"bob","message":"burst"}`) })
			}
			wg.Wait()
			got := []string{bob.Next(ctx).String(), bob.Next(ctx).String()}
			require.ElementsMatch(t, []string{
				`{"type":"privateMessage","fromUserId":"alice","message":"burst"}`,
				`{"type":"privateMessage","fromUserId":"bob","message":"burst"}`,
			}, got)
			require.Contains(t, other.Next(ctx).String(), `"notRegistered"`)

			// bob leaves: $disconnect unregisters him.
			bob.Close(1000, "")
			// A message that races bob's $disconnect is posted to his closing
			// connection and answered with nothing: wait a little for each
			// answer, then ask again.
			deadline := time.Now().Add(20 * time.Second)
			for gone := false; !gone; {
				require.True(t, time.Now().Before(deadline), "bob is still registered")
				alice.SendText(ctx, `{"action":"sendPrivateMessage","targetUserId":"bob","message":"there?"}`)
				for wait := time.Now().Add(2 * time.Second); !gone && time.Now().Before(wait); time.Sleep(20 * time.Millisecond) {
					for _, f := range alice.Received() {
						gone = gone || strings.Contains(f.String(), `"unknownUser"`)
					}
				}
			}
		})
	}
}
