package rie

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The emulator itself runs in the awslambda tests; these are the ways
// Start fails.
func TestStartFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Start(ctx, Config{Emulator: "/bin/sh"}); err == nil || !strings.Contains(err.Error(), "no command") {
		t.Errorf("no command: err = %v", err)
	}
	if _, err := Start(ctx, Config{Emulator: "/nonexistent/aws-lambda-rie", Command: []string{"x"}}); err == nil {
		t.Error("missing emulator: no error")
	}
	// An "emulator" that exits at once.
	_, err := Start(ctx, Config{Emulator: "/bin/sh", Command: []string{"-c", "exit 3"}})
	if err == nil || !strings.Contains(err.Error(), "exited before serving") {
		t.Errorf("exiting emulator: err = %v", err)
	}
}
