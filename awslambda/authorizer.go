package awslambda

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/wsroute/wsroute"
)

// AuthorizerFunc is the signature of an aws-lambda-go REQUEST authorizer.
type AuthorizerFunc func(context.Context, events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error)

// AuthorizerOptions configures [WrapAuthorizer]. A nil *AuthorizerOptions,
// and every zero field, means the documented default.
type AuthorizerOptions struct {
	// Region and AccountID fill the route's ARN (methodArn):
	// arn:aws:execute-api:{Region}:{AccountID}:{apiId}/{stage}/$connect.
	// Defaults "us-east-1" and "123456789012".
	Region    string
	AccountID string
}

// The action an authorizer's policy must allow on the route's ARN.
const invokeAction = "execute-api:Invoke"

// WrapAuthorizer turns an aws-lambda-go REQUEST authorizer into a
// wsroute.Options.Authorizer, deciding as API Gateway does:
//
//   - f's event is [ToAuthorizerEvent] of the CONNECT event.
//   - An error whose text is "Unauthorized" (what an authorizer returns on
//     Lambda for 401) refuses with 401; any other error with 500.
//   - Its policy document is evaluated for execute-api:Invoke on the route's
//     ARN: Action and Resource may use the wildcards '*' and '?', an explicit
//     Deny wins, and without a matching Allow the request is refused with 403.
//     A statement whose Effect is neither Allow nor Deny refuses with 500.
//   - When allowed, principalId and every key of context appear in
//     requestContext.authorizer on every later event of the connection.
//     Context values must be strings, numbers or booleans, as API Gateway
//     requires; another type refuses with 500.
func WrapAuthorizer(f AuthorizerFunc, opts *AuthorizerOptions) func(context.Context, *wsroute.Request) (*wsroute.AuthorizerResult, error) {
	region, account := "us-east-1", "123456789012"
	if opts != nil && opts.Region != "" {
		region = opts.Region
	}
	if opts != nil && opts.AccountID != "" {
		account = opts.AccountID
	}
	return func(ctx context.Context, req *wsroute.Request) (*wsroute.AuthorizerResult, error) {
		ev := ToAuthorizerEvent(req, region, account)
		resp, err := f(ctx, ev)
		if err != nil {
			if err.Error() == "Unauthorized" {
				return nil, fmt.Errorf("%w: %w", wsroute.ErrUnauthorized, err)
			}
			return nil, err
		}
		d, err := evaluate(resp.PolicyDocument, invokeAction, ev.MethodArn)
		if err != nil {
			return nil, err
		}
		if d != wsroute.PolicyAllowed {
			return nil, wsroute.ErrAccessDenied
		}
		for k, v := range resp.Context {
			switch v.(type) {
			case string, bool, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
			default:
				return nil, fmt.Errorf("awslambda: authorizer context %q is a %T; API Gateway allows strings, numbers and booleans", k, v)
			}
		}
		return &wsroute.AuthorizerResult{PrincipalID: resp.PrincipalID, Context: resp.Context}, nil
	}
}

// MethodARN returns the ARN of a route as API Gateway gives it to an
// authorizer: arn:aws:execute-api:{region}:{account}:{apiID}/{stage}/{route}.
func MethodARN(region, account, apiID, stage, route string) string {
	return "arn:aws:execute-api:" + region + ":" + account + ":" + apiID + "/" + stage + "/" + route
}

// ToAuthorizerEvent returns the REQUEST authorizer event API Gateway sends
// for the CONNECT event req: type "REQUEST", methodArn for $connect (see
// [MethodARN]), the request's headers and query string parameters, stage
// variables, and its context. Maps are shared with req, not copied.
func ToAuthorizerEvent(req *wsroute.Request, region, account string) events.APIGatewayCustomAuthorizerRequestTypeRequest {
	rc := &req.RequestContext
	return events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type:                            "REQUEST",
		MethodArn:                       MethodARN(region, account, rc.APIID, rc.Stage, rc.RouteKey),
		Headers:                         req.Headers,
		MultiValueHeaders:               req.MultiValueHeaders,
		QueryStringParameters:           req.QueryStringParameters,
		MultiValueQueryStringParameters: req.MultiValueQueryStringParameters,
		StageVariables:                  req.StageVariables,
		RequestContext: events.APIGatewayCustomAuthorizerRequestTypeRequestContext{
			AccountID: account,
			Stage:     rc.Stage,
			RequestID: rc.RequestID,
			Identity: events.APIGatewayCustomAuthorizerRequestTypeRequestIdentity{
				SourceIP: rc.Identity.SourceIP,
				APIKey:   req.Headers["X-Api-Key"],
			},
			APIID: rc.APIID,
		},
	}
}
