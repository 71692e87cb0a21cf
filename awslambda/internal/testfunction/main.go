// Command testfunction is a Lambda function built with aws-lambda-go that the
// awslambda tests run under the Runtime Interface Emulator. What it does
// depends on the event:
//
//   - $connect: sleeps for the "sleep" query string parameter in ms, then
//     refuses with the status in "status", fails when "fail" is set, else
//     accepts.
//   - a message {"action": A, "ms": N}: "event" answers with the event it
//     received, as aws-lambda-go decoded it; "sleep" sleeps N ms and answers
//     "slept"; "fail" returns an error; "invalid" returns a plain string,
//     which is not a Lambda proxy result; "null" returns nothing.
//   - $disconnect: appends the event to the file named by DISCONNECT_LOG.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (any, error) {
	switch ev.RequestContext.RouteKey {
	case "$connect":
		if _, ok := ev.QueryStringParameters["fail"]; ok {
			return nil, errors.New("connect failed on purpose")
		}
		if s, ok := ev.QueryStringParameters["sleep"]; ok {
			n, _ := strconv.Atoi(s)
			time.Sleep(time.Duration(n) * time.Millisecond)
		}
		if s, ok := ev.QueryStringParameters["status"]; ok {
			n, _ := strconv.Atoi(s)
			return events.APIGatewayProxyResponse{StatusCode: n, Body: "refused by the function"}, nil
		}
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	case "$disconnect":
		b, _ := json.Marshal(ev)
		f, err := os.OpenFile(os.Getenv("DISCONNECT_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		_, err = f.Write(append(b, '\n'))
		return nil, err
	}
	var msg struct {
		Action string `json:"action"`
		MS     int    `json:"ms"`
	}
	_ = json.Unmarshal([]byte(ev.Body), &msg)
	switch msg.Action {
	case "event":
		b, err := json.Marshal(ev)
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: string(b)}, err
	case "sleep":
		time.Sleep(time.Duration(msg.MS) * time.Millisecond) // past the function's timeout too
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "slept"}, nil
	case "fail":
		return nil, errors.New("message failed on purpose")
	case "invalid":
		return "not a proxy result", nil
	case "null":
		return nil, nil
	}
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: "unknown action"}, nil
}

func main() { lambda.Start(handle) }
