// Command stage serves a local API Gateway stage: the WebSocket endpoint at
// /{stage} and the @connections management API under it, so that functions
// written for API Gateway call back, unchanged, to the endpoint they build
// from their event (https://{domainName}/{stage}).
//
// Every route ($connect, $disconnect, $default) goes to an HTTP backend that
// speaks the Lambda proxy event and result (-backend), or, without one, to
// an echo. With -tls it generates a development certificate authority and
// serves https and wss with a certificate it signed, and prints the CA's
// path and the variables each SDK reads to trust it. With -quotas it
// enforces API Gateway's quotas.
//
//	go run ./examples/stage -tls -quotas -backend http://127.0.0.1:9000/
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
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
	"strings"
	"time"

	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/internal/devtls"
)

// config is what the flags set.
type config struct {
	addr, stage, backend string
	tls                  bool
	certDir              string
	quotas               bool
	accessKeyID, secret  string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "address to listen on")
	flag.StringVar(&cfg.stage, "stage", "dev", "stage name: the path clients dial and functions call back to")
	flag.StringVar(&cfg.backend, "backend", "", "URL of an HTTP backend that serves every route (Lambda proxy event in, result out); default: echo")
	flag.BoolVar(&cfg.tls, "tls", false, "serve https and wss with a generated development certificate")
	flag.StringVar(&cfg.certDir, "cert-dir", "", "where -tls writes ca.pem, cert.pem and key.pem (default: a new temporary directory)")
	flag.BoolVar(&cfg.quotas, "quotas", false, "enforce API Gateway's quotas (32 KB frames, 500 new connections/s, 29 s integration timeout, …)")
	flag.StringVar(&cfg.accessKeyID, "access-key-id", "", "access key ID the management API accepts in SigV4 signatures (default: generated)")
	flag.StringVar(&cfg.secret, "secret-access-key", "", "its secret (default: generated)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		log.Fatal(err)
	}
	st, err := newStage(cfg, os.Stdout)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: st.handler, TLSConfig: st.tlsConfig, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = st.router.Shutdown(shutdown) // closes WebSockets (http.Server.Shutdown does not)
		_ = srv.Shutdown(shutdown)
	}()
	if st.tlsConfig != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// stage is a configured router, its handler and, with -tls, its TLS setup.
type stage struct {
	router    *wsroute.Router
	handler   http.Handler
	tlsConfig *tls.Config
	files     *devtls.Files
}

// newStage builds the stage and prints how to reach it.
func newStage(cfg config, out io.Writer) (*stage, error) {
	opts := &wsroute.Options{Stage: cfg.stage, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if cfg.quotas {
		opts.Quotas = &wsroute.Quotas{}
	}
	router, err := wsroute.New(opts)
	if err != nil {
		return nil, err
	}
	if cfg.backend != "" {
		backend := wsroute.HTTPIntegration(cfg.backend, nil)
		for _, k := range []string{wsroute.RouteConnect, wsroute.RouteDisconnect, wsroute.RouteDefault} {
			router.Handle(k, backend)
		}
	} else {
		router.HandleFunc(wsroute.RouteDefault, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
			return &wsroute.Response{Body: req.Body}, nil
		})
	}
	if cfg.accessKeyID == "" || cfg.secret == "" {
		cfg.accessKeyID, cfg.secret = "AKIA"+strings.ToUpper(randomHex(8)), randomHex(20)
	}
	mux := http.NewServeMux()
	router.MountStage(mux, wsroute.NewManagementHandler(router.Connections(), &wsroute.ManagementOptions{
		Credentials: map[string]string{cfg.accessKeyID: cfg.secret},
	}))
	st := &stage{router: router, handler: mux}

	scheme := "http"
	if cfg.tls {
		dir := cfg.certDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "wsroute-tls-"); err != nil {
				return nil, err
			}
		}
		host, _, _ := net.SplitHostPort(cfg.addr)
		hosts := []string{"127.0.0.1", "localhost"}
		if host != "" && host != "127.0.0.1" && host != "localhost" {
			hosts = append(hosts, host)
		}
		if st.files, err = devtls.Generate(dir, hosts...); err != nil {
			return nil, err
		}
		if st.tlsConfig, err = st.files.ServerConfig(); err != nil {
			return nil, err
		}
		scheme = "https"
	}
	ws := "ws" + scheme[len("http"):]
	fmt.Fprintf(out, "stage %q on %s\n", cfg.stage, cfg.addr)
	fmt.Fprintf(out, "  clients dial         %s://%s/%s\n", ws, cfg.addr, cfg.stage)
	fmt.Fprintf(out, "  management endpoint  %s://%s/%s   (what functions build from the event: %s://{domainName}/{stage})\n", scheme, cfg.addr, cfg.stage, scheme)
	fmt.Fprintf(out, "  credentials          AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n", cfg.accessKeyID, cfg.secret)
	if st.files != nil {
		f := st.files
		fmt.Fprintf(out, "development CA %s (certificate %s, key %s); to trust it:\n", f.CAFile, f.CertFile, f.KeyFile)
		fmt.Fprintf(out, "  export AWS_CA_BUNDLE=%s        # boto3, the AWS CLI, the AWS SDK for Go v2 (config.LoadDefaultConfig)\n", f.CAFile)
		fmt.Fprintf(out, "  export NODE_EXTRA_CA_CERTS=%s  # Node.js, so the AWS SDK for JavaScript\n", f.CAFile)
		fmt.Fprintf(out, "  export SSL_CERT_FILE=%s        # Go's crypto/x509 and OpenSSL-based clients; replaces the system roots\n", f.CAFile)
	}
	return st, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
