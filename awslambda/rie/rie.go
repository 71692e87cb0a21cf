// Package rie builds and runs the AWS Lambda Runtime Interface Emulator
// (github.com/aws/aws-lambda-runtime-interface-emulator), which serves the
// Lambda Invoke API for one function on a local port, running the function's
// bootstrap (an aws-lambda-go program, or any custom runtime) as AWS Lambda
// runs it. It is for tests and local development, on Linux (the emulator's
// only platform).
//
// The emulator has one execution environment: it fails a second invocation
// while one is running, so give the awslambda.Invoker that calls it
// MaxConcurrency 1.
package rie

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// Package is the emulator's main package, and Version the module version
// [Build] installs from the Go module proxy.
const (
	Package = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
	Version = "v0.0.0-20261030222936-bef5c4ba774d"
)

// Build installs the emulator at [Version] into dir with `go install`, from
// the Go module proxy (or the module cache), and returns the binary's path.
// It needs the go command on PATH; the first build takes a minute or two.
func Build(ctx context.Context, dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "install", Package+"@"+Version)
	// Outside any module or workspace: @version installs need that.
	cmd.Env = append(os.Environ(), "GOBIN="+abs, "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	cmd.Dir = abs
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("rie: go install %s@%s: %w\n%s", Package, Version, err, out.Bytes())
	}
	return filepath.Join(abs, "aws-lambda-rie"), nil
}

// FunctionName is the name the emulator serves its function under: it
// answers /2015-03-31/functions/function/invocations and nothing else.
const FunctionName = "function"

// Config says what to run.
type Config struct {
	// Emulator is the path of the aws-lambda-rie binary (see Build).
	Emulator string
	// Command is the function's bootstrap and its arguments: an aws-lambda-go
	// program, or a custom runtime such as a Python script.
	Command []string
	// Env is added to the emulator's environment, which the function
	// inherits: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
	// AWS_LAMBDA_FUNCTION_TIMEOUT (seconds, default 300), variables of your
	// own.
	Env []string
	// Dir is the function's working directory. Default: the current one.
	Dir string
	// Output receives the emulator's and the function's output. Default
	// none.
	Output io.Writer
}

// Emulator is a running emulator.
type Emulator struct {
	// URL is the base URL of its Invoke API, http://127.0.0.1:<port>: give
	// it to the Lambda client as its BaseEndpoint, and invoke the function
	// named [FunctionName].
	URL string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
	once sync.Once
}

// Start runs the emulator on free ports of 127.0.0.1 and returns once its
// Invoke API accepts connections, or ctx ends (the process lives on after
// Start returns; stop it with Close).
func Start(ctx context.Context, cfg Config) (*Emulator, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("rie: no command")
	}
	apiAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	runtimeAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--runtime-interface-emulator-address", apiAddr,
		"--runtime-api-address", runtimeAddr,
	}, cfg.Command...)
	cmd := exec.Command(cfg.Emulator, args...)
	cmd.Env = append(os.Environ(), cfg.Env...)
	cmd.Dir = cfg.Dir
	out := cfg.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("rie: %w", err)
	}
	e := &Emulator{URL: "http://" + apiAddr, cmd: cmd, done: make(chan struct{})}
	go func() {
		e.err = cmd.Wait()
		close(e.done)
	}()
	if err := e.waitReady(ctx, apiAddr); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Emulator) waitReady(ctx context.Context, addr string) error {
	var d net.Dialer
	for {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			return c.Close()
		}
		select {
		case <-e.done:
			return fmt.Errorf("rie: the emulator exited before serving: %v", e.err)
		case <-ctx.Done():
			return fmt.Errorf("rie: the emulator did not serve %s: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close kills the emulator and the function's processes, and waits for the
// emulator to exit. It is safe to call more than once.
func (e *Emulator) Close() error {
	e.once.Do(func() { killProcessGroup(e.cmd) })
	<-e.done
	return nil
}

// Done is closed when the emulator has exited.
func (e *Emulator) Done() <-chan struct{} { return e.done }

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("rie: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}
