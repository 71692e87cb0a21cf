// Package awslambda serves wsroute routes with what serves them behind
// Amazon API Gateway: AWS Lambda functions, through the Lambda Invoke API,
// and aws-lambda-go handlers and REQUEST authorizers, in process.
//
//   - [Invoker] invokes a function by name or ARN with aws-sdk-go-v2's Lambda
//     client, configured as usual (credentials, region, and BaseEndpoint for
//     anything else that serves the Invoke API, such as the AWS Lambda Runtime
//     Interface Emulator). The payload is the event as API Gateway's Lambda
//     proxy integration sends it ([wsroute.Request] encodes as that), and the
//     result is read as a Lambda proxy result. Failures are answered as API
//     Gateway answers them.
//   - [WrapHandler] and [WrapAuthorizer] run aws-lambda-go handlers written
//     against github.com/aws/aws-lambda-go/events in process, converting
//     events field by field with [ToEvent], [FromResponse] and
//     [ToAuthorizerEvent], without a JSON round trip.
//
// The sub-package rie builds and runs the Runtime Interface Emulator, for
// tests and local development.
package awslambda
