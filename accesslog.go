package wsroute

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// NewAccessLog returns an [Observer] that writes one access log line per
// event (CONNECT, MESSAGE, DISCONNECT) and per management API call to
// logger, at level Info, with the message "wsroute access". The attributes
// are named after API Gateway's $context variables, so that queries written
// for API Gateway's access logs keep working:
//
//	requestId, extendedRequestId, requestTime, requestTimeEpoch, eventType,
//	routeKey, messageId, connectionId, connectedAt, status,
//	integrationStatus, integrationLatency (milliseconds), identity.sourceIp,
//	identity.userAgent, apiId, stage, domainName, authorizer.principalId,
//	error.message, disconnectStatusCode, disconnectReason
//
// An attribute is left out when it has no value for the event. An upgrade
// request refused before its CONNECT event was made (see [Observer.End])
// has no requestId or connectionId. A management call's line has
// eventType "MANAGEMENT", httpMethod, connectionId, status, requestId and
// responseLatency.
//
// The format is the logger's: a JSON handler writes one JSON object per
// line, as API Gateway's JSON access log format; a text handler writes
// key=value pairs. To drop or rename attributes, use the handler's
// ReplaceAttr. To log only some events, wrap the handler.
//
// Combine it with another Observer by calling both from an Observer of your
// own.
func NewAccessLog(logger *slog.Logger) Observer {
	if logger == nil {
		panic("wsroute: NewAccessLog: nil logger")
	}
	return &accessLog{log: logger}
}

type accessLog struct {
	NopObserver
	log *slog.Logger
}

// accessUpgrade is the state of a connection: what a refused upgrade
// request's line needs.
type accessUpgrade struct {
	ip, userAgent string
	at            time.Time
}

func (a *accessLog) Upgrade(ctx context.Context, req *http.Request) (context.Context, any) {
	return ctx, &accessUpgrade{ip: remoteIP(req.RemoteAddr), userAgent: req.UserAgent(), at: time.Now()}
}

func (a *accessLog) End(ctx context.Context, state any, ev *Request, res *EventResult) {
	if !a.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 24)
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	if ev == nil {
		attrs = append(attrs, slog.String("eventType", EventConnect), slog.String("routeKey", RouteConnect))
		if u, ok := state.(*accessUpgrade); ok {
			attrs = append(attrs, slog.String("requestTime", u.at.UTC().Format(requestTimeLayout)),
				slog.Int64("requestTimeEpoch", u.at.UnixMilli()))
			add("identity.sourceIp", u.ip)
			add("identity.userAgent", u.userAgent)
		}
		attrs = append(attrs, slog.Int("status", res.Status))
	} else {
		rc := &ev.RequestContext
		add("requestId", rc.RequestID)
		add("extendedRequestId", rc.ExtendedRequestID)
		add("requestTime", rc.RequestTime)
		attrs = append(attrs, slog.Int64("requestTimeEpoch", rc.RequestTimeEpoch))
		add("eventType", rc.EventType)
		add("routeKey", rc.RouteKey)
		add("messageId", rc.MessageID)
		add("connectionId", rc.ConnectionID)
		attrs = append(attrs, slog.Int64("connectedAt", rc.ConnectedAt), slog.Int("status", res.Status))
		add("identity.sourceIp", rc.Identity.SourceIP)
		add("identity.userAgent", rc.Identity.UserAgent)
		add("apiId", rc.APIID)
		add("stage", rc.Stage)
		add("domainName", rc.DomainName)
		if p, ok := rc.Authorizer["principalId"].(string); ok {
			add("authorizer.principalId", p)
		}
		if rc.EventType == EventDisconnect {
			attrs = append(attrs, slog.Int("disconnectStatusCode", rc.DisconnectStatusCode))
			add("disconnectReason", rc.DisconnectReason)
		}
	}
	if res.Integrated {
		attrs = append(attrs, slog.Int("integrationStatus", res.Status),
			slog.Int64("integrationLatency", res.IntegrationLatency.Milliseconds()))
	}
	if res.Err != nil {
		add("error.message", res.Err.Error())
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "wsroute access", attrs...)
}

func (a *accessLog) ManagementCall(req *http.Request, call *ManagementCall) {
	ctx := req.Context()
	if !a.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "wsroute access",
		slog.String("requestId", call.RequestID),
		slog.String("requestTime", call.Start.UTC().Format(requestTimeLayout)),
		slog.Int64("requestTimeEpoch", call.Start.UnixMilli()),
		slog.String("eventType", "MANAGEMENT"),
		slog.String("httpMethod", call.Method),
		slog.String("connectionId", call.ConnectionID),
		slog.Int("status", call.Status),
		slog.String("identity.sourceIp", remoteIP(req.RemoteAddr)),
		slog.Int64("responseLatency", call.Duration.Milliseconds()))
}
