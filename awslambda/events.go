package awslambda

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/wsroute/wsroute"
)

// EventHandler is the signature of an aws-lambda-go handler for API
// Gateway WebSocket routes.
type EventHandler func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)

// WrapHandler serves a route in process with an aws-lambda-go handler: each
// event is converted with [ToEvent], and the handler's response with
// [FromResponse]. An error from f is the route's error (on $connect the
// router refuses with 500; on a message route the client gets the Internal
// server error frame).
func WrapHandler(f EventHandler) wsroute.Handler {
	return wsroute.HandlerFunc(func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		resp, err := f(ctx, ToEvent(req))
		if err != nil {
			return nil, err
		}
		return FromResponse(resp), nil
	})
}

// ToEvent returns req as aws-lambda-go's event, field by field, as a Lambda
// function would decode it from the event's JSON, without encoding it. The
// maps are shared with req, not copied: read them, do not modify them.
// RequestContext.Authorizer, when set, is a map[string]any whose numbers keep
// their Go types (integrationLatency is an int64) rather than float64.
func ToEvent(req *wsroute.Request) events.APIGatewayWebsocketProxyRequest {
	rc := &req.RequestContext
	ev := events.APIGatewayWebsocketProxyRequest{
		Headers:                         req.Headers,
		MultiValueHeaders:               req.MultiValueHeaders,
		QueryStringParameters:           req.QueryStringParameters,
		MultiValueQueryStringParameters: req.MultiValueQueryStringParameters,
		StageVariables:                  req.StageVariables,
		Body:                            req.Body,
		IsBase64Encoded:                 req.IsBase64Encoded,
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			Stage:     rc.Stage,
			RequestID: rc.RequestID,
			Identity: events.APIGatewayRequestIdentity{
				SourceIP:  rc.Identity.SourceIP,
				UserAgent: rc.Identity.UserAgent,
			},
			APIID:                rc.APIID,
			ConnectedAt:          rc.ConnectedAt,
			ConnectionID:         rc.ConnectionID,
			DomainName:           rc.DomainName,
			EventType:            rc.EventType,
			ExtendedRequestID:    rc.ExtendedRequestID,
			MessageDirection:     rc.MessageDirection,
			RequestTime:          rc.RequestTime,
			RequestTimeEpoch:     rc.RequestTimeEpoch,
			RouteKey:             rc.RouteKey,
			DisconnectStatusCode: int64(rc.DisconnectStatusCode),
		},
	}
	if rc.Authorizer != nil {
		ev.RequestContext.Authorizer = rc.Authorizer
	}
	if rc.MessageID != "" {
		ev.RequestContext.MessageID = rc.MessageID
	}
	if rc.EventType == wsroute.EventDisconnect {
		// API Gateway always sends disconnectReason on DISCONNECT, even empty.
		ev.RequestContext.DisconnectReason = &rc.DisconnectReason
	}
	return ev
}

// FromResponse returns an aws-lambda-go response as the route's response.
// The maps are shared, not copied.
func FromResponse(resp events.APIGatewayProxyResponse) *wsroute.Response {
	return &wsroute.Response{
		StatusCode:        resp.StatusCode,
		Headers:           resp.Headers,
		MultiValueHeaders: resp.MultiValueHeaders,
		Body:              resp.Body,
		IsBase64Encoded:   resp.IsBase64Encoded,
	}
}
