// Package sdk holds only tests: they drive wsroute's @connections management
// API with the real AWS SDK for Go v2 and with boto3, against a real router
// on 127.0.0.1. It is a module of its own so that the core module never
// requires the SDK. Run its tests with go test in this folder.
package sdk
