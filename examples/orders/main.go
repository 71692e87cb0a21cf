// Command orders is the order-status callback of the AWSomePets workshop on
// wsroute: a client connects with ?orderId=…, a background process moves
// orders through their statuses, and every change is pushed to the clients
// watching that order with PostToConnection. Any message a client sends is
// answered with the order's current status.
//
//	go run ./examples/orders
//	websocat 'ws://127.0.0.1:8081/ws?orderId=1001'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("orders", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "127.0.0.1:8081", "address to listen on")
	interval := fs.Duration("interval", 3*time.Second, "how often orders move to their next status")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *interval <= 0 {
		return errors.New("-interval must be positive")
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := newApp(log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	// WebSocket connections are hijacked at the upgrade, which clears these
	// deadlines: they bound the handshake and plain HTTP requests only.
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(out, "Order status: ws://%s/ws?orderId=1001 (orders advance every %v)\n", ln.Addr(), *interval)

	var wg sync.WaitGroup
	procCtx, stopProc := context.WithCancel(ctx)
	wg.Go(func() { a.process(procCtx, *interval) })
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	stopProc()
	wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := a.router.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	fmt.Fprintln(out, "stopped")
	return err
}
