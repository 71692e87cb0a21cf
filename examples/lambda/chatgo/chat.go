// Package chatgo is the chat protocol of examples/chat as an aws-lambda-go
// handler for API Gateway WebSocket routes, written as for AWS Lambda:
// frames to other connections go through the management API, with
// aws-sdk-go-v2's apigatewaymanagementapi client, on the endpoint built from
// the event (https://{domainName}/{stage} on AWS). Serve it on Lambda with
// lambda.Start(chatgo.New(cfg, "https").Handle), or in process behind wsroute
// with awslambda.WrapHandler.
//
// The AWS samples keep user IDs in a DynamoDB table; this one keeps them in
// memory, which is right only where one process serves every event.
package chatgo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
)

const maxMessageLength = 2000

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)
	actions = []string{"registerUser", "sendPrivateMessage", "join", "leave", "sendMessage"}
)

// Chat holds the registered users. It is safe for concurrent use.
type Chat struct {
	cfg    aws.Config
	scheme string

	mu          sync.Mutex
	users       map[string]string // user ID → connection ID
	connections map[string]string // connection ID → user ID
	clients     map[string]*apigatewaymanagementapi.Client
}

// New returns a chat whose management API clients are made from cfg, on
// scheme://{domainName}/{stage}: "https" on AWS, "http" for a local router
// without TLS.
func New(cfg aws.Config, scheme string) *Chat {
	return &Chat{cfg: cfg, scheme: scheme, users: map[string]string{},
		connections: map[string]string{}, clients: map[string]*apigatewaymanagementapi.Client{}}
}

func (c *Chat) managementAPI(ev events.APIGatewayWebsocketProxyRequest) *apigatewaymanagementapi.Client {
	endpoint := c.scheme + "://" + ev.RequestContext.DomainName + "/" + ev.RequestContext.Stage
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.clients[endpoint]
	if cl == nil {
		cl = apigatewaymanagementapi.NewFromConfig(c.cfg, func(o *apigatewaymanagementapi.Options) {
			o.BaseEndpoint = aws.String(endpoint)
		})
		c.clients[endpoint] = cl
	}
	return cl
}

func (c *Chat) post(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest, connectionID string, v any) error {
	b, _ := json.Marshal(v)
	_, err := c.managementAPI(ev).PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(connectionID), Data: b,
	})
	return err
}

// The frames, with their fields in the order of examples/chat.
type (
	registrationSuccess struct {
		Type   string `json:"type"`
		UserID string `json:"userId"`
	}
	privateMessage struct {
		Type       string `json:"type"`
		FromUserID string `json:"fromUserId"`
		Message    string `json:"message"`
	}
	errorFrame struct {
		Type         string `json:"type"`
		Code         string `json:"code"`
		Message      string `json:"message"`
		Action       string `json:"action,omitempty"`
		TargetUserID string `json:"targetUserId,omitempty"`
	}
)

// fail answers the caller with an error frame: the route's response.
func fail(code, message, action, target string) (events.APIGatewayProxyResponse, error) {
	b, _ := json.Marshal(errorFrame{Type: "error", Code: code, Message: message, Action: action, TargetUserID: target})
	return events.APIGatewayProxyResponse{StatusCode: http.StatusOK, Body: string(b)}, nil
}

func invalidName(what string) string {
	return what + " must be 1 to 32 letters, digits, '_', '.' or '-'."
}

var ok = events.APIGatewayProxyResponse{StatusCode: http.StatusOK}

// Handle serves every route of the chat.
func (c *Chat) Handle(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	me := ev.RequestContext.ConnectionID
	switch route := ev.RequestContext.RouteKey; route {
	case "$connect":
		return ok, nil
	case "$disconnect":
		c.mu.Lock()
		c.departLocked(me)
		c.mu.Unlock()
		return ok, nil
	case "registerUser":
		var in struct {
			UserID string `json:"userId"`
		}
		if json.Unmarshal([]byte(ev.Body), &in) != nil || !nameRE.MatchString(in.UserID) {
			return fail("invalidRequest", invalidName("userId"), route, "")
		}
		return c.register(ctx, ev, in.UserID)
	case "sendPrivateMessage":
		var in struct {
			TargetUserID string `json:"targetUserId"`
			Message      string `json:"message"`
		}
		if json.Unmarshal([]byte(ev.Body), &in) != nil || !nameRE.MatchString(in.TargetUserID) {
			return fail("invalidRequest", invalidName("targetUserId"), route, "")
		}
		if in.Message == "" || !utf8.ValidString(in.Message) || utf8.RuneCountInString(in.Message) > maxMessageLength {
			return fail("invalidRequest", fmt.Sprintf("message must be 1 to %d characters.", maxMessageLength),
				route, in.TargetUserID)
		}
		return c.sendPrivate(ctx, ev, in.TargetUserID, in.Message)
	}
	var in struct {
		Action any `json:"action"`
	}
	if json.Unmarshal([]byte(ev.Body), &in) != nil {
		return fail("invalidRequest", `Frames must be JSON objects with an "action" field.`, "", "")
	}
	action, _ := in.Action.(string)
	if action == "" {
		return fail("invalidRequest", `The "action" field is missing.`, "", "")
	}
	return fail("unknownAction", fmt.Sprintf("Unknown action %q: use one of %s.", action, strings.Join(actions, ", ")),
		action, "")
}

func (c *Chat) register(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest, user string) (events.APIGatewayProxyResponse, error) {
	me := ev.RequestContext.ConnectionID
	c.mu.Lock()
	holder := c.users[user]
	c.mu.Unlock()
	if holder != "" && holder != me {
		_, err := c.managementAPI(ev).GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(holder)})
		var gone *types.GoneException
		if !errors.As(err, &gone) {
			return fail("userIdTaken", fmt.Sprintf("The user ID %q is taken: choose another one.", user),
				"registerUser", "")
		}
	}
	c.mu.Lock()
	c.departLocked(me)
	if old := c.users[user]; old != "" {
		delete(c.connections, old) // closed; its $disconnect has not run yet
	}
	c.users[user], c.connections[me] = me, user
	c.mu.Unlock()
	return ok, c.post(ctx, ev, me, registrationSuccess{Type: "registrationSuccess", UserID: user})
}

func (c *Chat) sendPrivate(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest, target, message string) (events.APIGatewayProxyResponse, error) {
	c.mu.Lock()
	from, to := c.connections[ev.RequestContext.ConnectionID], c.users[target]
	c.mu.Unlock()
	if from == "" {
		return fail("notRegistered", "Register a user ID first.", "sendPrivateMessage", target)
	}
	unknown := fmt.Sprintf("No user %q is online.", target)
	if to == "" {
		return fail("unknownUser", unknown, "sendPrivateMessage", target)
	}
	err := c.post(ctx, ev, to, privateMessage{Type: "privateMessage", FromUserID: from, Message: message})
	var gone *types.GoneException
	if errors.As(err, &gone) {
		return fail("unknownUser", unknown, "sendPrivateMessage", target)
	}
	return ok, err
}

func (c *Chat) departLocked(connectionID string) {
	if user, found := c.connections[connectionID]; found {
		delete(c.connections, connectionID)
		if c.users[user] == connectionID {
			delete(c.users, user)
		}
	}
}
