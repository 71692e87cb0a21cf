package rie_test

import (
	"context"
	"log"

	"github.com/wsroute/wsroute/awslambda/rie"
)

// Build the emulator, run a function under it, and invoke it at e.URL (with
// an awslambda.Invoker whose Lambda client has BaseEndpoint e.URL and
// MaxConcurrency 1, function name rie.FunctionName).
func ExampleStart() {
	ctx := context.Background()
	emulator, err := rie.Build(ctx, "/tmp/rie") // go install, from the Go module proxy
	if err != nil {
		log.Fatal(err)
	}
	e, err := rie.Start(ctx, rie.Config{
		Emulator: emulator,
		Command:  []string{"./bootstrap"}, // an aws-lambda-go program, or any custom runtime
		Env:      []string{"AWS_LAMBDA_FUNCTION_TIMEOUT=25"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	log.Println("Invoke API at", e.URL)
}
