// Command lambda serves the chat protocol of examples/chat (registerUser,
// sendPrivateMessage) with handlers written for AWS Lambda, behind wsroute:
//
//   - -backend python (the default): python/chat.py, a Lambda handler in the
//     style of the AWS chat samples, run by a custom runtime in Python's
//     standard library (python/bootstrap.py) under the AWS Lambda Runtime
//     Interface Emulator, and invoked through the Lambda Invoke API;
//   - -backend go: chatgo, an aws-lambda-go handler, in process.
//
// Both call back to the clients through the @connections management API on
// the endpoint they build from the event, http://{domainName}/{stage}, signed
// with SigV4 with the credentials this program prints. API Gateway's quotas
// are on.
//
//	go run . -backend python
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/awslambda"
	"github.com/wsroute/wsroute/awslambda/rie"
	"github.com/wsroute/wsroute/examples/lambda/chatgo"
)

// config is what the flags set.
type config struct {
	backend  string // "python" or "go"
	stage    string
	emulator string // path of aws-lambda-rie; "" builds it
	python   string // python3 with boto3
	pyDir    string // where bootstrap.py and chat.py are
	keyID    string
	secret   string
	output   io.Writer // the emulator's and the function's output
	logger   *slog.Logger
}

// app is the running example.
type app struct {
	handler  http.Handler
	router   *wsroute.Router
	emulator *rie.Emulator // nil for the Go backend
	clients  *http.Transport
}

// routes the chat serves; every other action goes to $default.
var routes = []string{wsroute.RouteConnect, wsroute.RouteDisconnect, wsroute.RouteDefault, "registerUser", "sendPrivateMessage"}

func newApp(ctx context.Context, cfg config) (*app, error) {
	router, err := wsroute.New(&wsroute.Options{
		Stage:  cfg.stage,
		Logger: cfg.logger,
		// API Gateway's quotas: 32 KB frames, 500 new connections per
		// second, 29 s integration timeout, … so that a local run fails
		// where production would.
		Quotas: &wsroute.Quotas{},
	})
	if err != nil {
		return nil, err
	}
	a := &app{router: router, clients: &http.Transport{}}
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: cfg.keyID, SecretAccessKey: cfg.secret}, nil
	})

	var h wsroute.Handler
	switch cfg.backend {
	case "go":
		// In process: the aws-lambda-go handler, unchanged, with the
		// credentials and region a Lambda function gets from its environment.
		chat := chatgo.New(aws.Config{Region: "us-east-1", Credentials: creds, HTTPClient: &http.Client{Transport: a.clients}}, "http")
		h = awslambda.WrapHandler(chat.Handle)
	case "python":
		emulator := cfg.emulator
		if emulator == "" {
			dir, err := os.UserCacheDir()
			if err != nil {
				dir = os.TempDir()
			}
			dir = filepath.Join(dir, "wsroute-example-lambda")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			fmt.Fprintf(cfg.output, "building the Runtime Interface Emulator %s into %s …\n", rie.Version, dir)
			if emulator, err = rie.Build(ctx, dir); err != nil {
				return nil, err
			}
		}
		pyDir, err := filepath.Abs(cfg.pyDir)
		if err != nil {
			return nil, err
		}
		a.emulator, err = rie.Start(ctx, rie.Config{
			Emulator: emulator,
			Command:  []string{cfg.python, filepath.Join(pyDir, "bootstrap.py"), "chat.handler"},
			Env: []string{
				// What Lambda gives a function: credentials and a region.
				// Here they are the management API's, for the callbacks.
				"AWS_ACCESS_KEY_ID=" + cfg.keyID, "AWS_SECRET_ACCESS_KEY=" + cfg.secret,
				"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
				"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
				// The function's timeout, below the integration timeout.
				"AWS_LAMBDA_FUNCTION_TIMEOUT=25",
				// The only change to the function: callbacks over http.
				"MANAGEMENT_API_SCHEME=http",
			},
			Dir:    pyDir,
			Output: cfg.output,
		})
		if err != nil {
			return nil, err
		}
		client := lambda.New(lambda.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(a.emulator.URL),
			Credentials:  creds,
			HTTPClient:   &http.Client{Transport: a.clients},
		})
		// The emulator runs one invocation at a time.
		inv := awslambda.New(client, &awslambda.Options{MaxConcurrency: 1, Timeout: 29 * time.Second})
		h = inv.Handler(rie.FunctionName)
	default:
		return nil, fmt.Errorf("unknown backend %q: want python or go", cfg.backend)
	}
	for _, route := range routes {
		router.Handle(route, h)
	}

	mux := http.NewServeMux()
	// ws://host/{stage} for clients, http://host/{stage}/@connections/{id}
	// for the functions' callbacks.
	router.MountStage(mux, wsroute.NewManagementHandler(router.Connections(), &wsroute.ManagementOptions{
		Credentials: map[string]string{cfg.keyID: cfg.secret},
	}))
	a.handler = mux
	return a, nil
}

// Close shuts the router down (running every $disconnect) and stops the
// emulator.
func (a *app) Close(ctx context.Context) error {
	err := a.router.Shutdown(ctx)
	if a.emulator != nil {
		_ = a.emulator.Close()
	}
	a.clients.CloseIdleConnections()
	return err
}

func main() {
	cfg := config{output: os.Stderr}
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.StringVar(&cfg.backend, "backend", "python", "what serves the routes: python (chat.py under the Runtime Interface Emulator) or go (chatgo in process)")
	flag.StringVar(&cfg.stage, "stage", "dev", "stage name: the path clients dial and functions call back to")
	flag.StringVar(&cfg.emulator, "rie", "", "path of aws-lambda-rie (default: built with go install into the user cache directory)")
	flag.StringVar(&cfg.python, "python", "python3", "a python3 that can import boto3")
	flag.StringVar(&cfg.pyDir, "python-dir", "", "the directory of bootstrap.py and chat.py (default: python/ beside this source file)")
	flag.StringVar(&cfg.keyID, "access-key-id", "", "access key ID of the management API (default: generated)")
	flag.StringVar(&cfg.secret, "secret-access-key", "", "its secret (default: generated)")
	verbose := flag.Bool("v", false, "debug logging")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if (cfg.keyID == "") != (cfg.secret == "") {
		log.Fatal("give both -access-key-id and -secret-access-key, or neither")
	}
	if cfg.keyID == "" {
		cfg.keyID, cfg.secret = "AKIA"+randomHex(8), randomHex(20)
	}
	if cfg.pyDir == "" {
		cfg.pyDir = defaultPythonDir()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	a, err := newApp(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("\n  WebSocket:       ws://%s/%s  (routes served by the %s handler)\n", ln.Addr(), cfg.stage, cfg.backend)
	fmt.Printf("  Management API:  http://%s/%s  (SigV4: %s / %s)\n\n", ln.Addr(), cfg.stage, cfg.keyID, cfg.secret)

	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Close(shutdown) // closes WebSockets (http.Server.Shutdown does not)
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// defaultPythonDir finds python/ beside this file (go run), else in the
// current directory.
func defaultPythonDir() string {
	if _, file, _, ok := runtime.Caller(0); ok {
		if dir := filepath.Join(filepath.Dir(file), "python"); exists(dir) {
			return dir
		}
	}
	return "python"
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
