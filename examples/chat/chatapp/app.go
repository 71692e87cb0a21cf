// Package chatapp is the chat application of the chat example: a browser
// page and a WebSocket API with API Gateway's routing model, on one
// [http.Handler]. The example's main package serves it; the browser
// end-to-end test and the protocol tests build it on test servers.
//
// The routes, with the default route selection expression
// $request.body.action, are registerUser, sendPrivateMessage, join, leave,
// sendMessage, $default and $disconnect. registerUser and sendPrivateMessage
// speak the wire format of API Gateway's chat sample exactly. README.md in the
// example's folder documents every message.
package chatapp

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/wsroute/wsroute"
)

// EndpointPath is where [App.Handler] serves the WebSocket endpoint. The
// @connections management API, when enabled, is served under it, so
// http://host:port/ws is the endpoint to give an AWS SDK, as a stage URL.
const EndpointPath = "/ws"

//go:embed static
var static embed.FS

// Options configures [New]. A nil *Options means the defaults.
type Options struct {
	// Router configures the router. Default: wsroute's defaults. Its
	// RouteSelectionExpression must be empty or the default,
	// $request.body.action.
	Router *wsroute.Options

	// ManagementHandler, when not nil, is called once by New with the
	// router's ConnectionManager; the handler it returns (typically
	// [wsroute.NewManagementHandler]) is served under EndpointPath + "/", so
	// that /ws/@connections/{id} reaches it.
	ManagementHandler func(wsroute.ConnectionManager) (http.Handler, error)

	// Logger receives the app's and the router's logs. Default: none.
	Logger *slog.Logger
}

// App is the chat application. Create it with [New], serve [App.Handler], and
// call [App.Shutdown] when done. Its methods are safe for concurrent use.
type App struct {
	router  *wsroute.Router
	mgmt    http.Handler
	handler http.Handler
	log     *slog.Logger

	cm     wsroute.ConnectionManager
	groups wsroute.GroupManager // nil when cm has no groups (see postToGroup)
	store  *store

	// order serializes the events that change shared state (registrations,
	// rooms, departures) together with the frames they send, so that every
	// client sees presence lists and room traffic in one order. It is held
	// while frames are posted: PostToConnection on the router's own
	// ConnectionManager only queues them and never waits for a client.
	order sync.Mutex
}

// New returns the chat application with a new router.
func New(opts *Options) (*App, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var ro wsroute.Options
	if o.Router != nil {
		ro = *o.Router
	}
	if ro.RouteSelectionExpression != "" && ro.RouteSelectionExpression != "$request.body.action" {
		return nil, errors.New("chatapp: the chat routes on $request.body.action")
	}
	if ro.Logger == nil {
		ro.Logger = log
	}
	r, err := wsroute.New(&ro)
	if err != nil {
		return nil, err
	}
	a := newApp(r.Connections(), log)
	a.router = r
	a.routes(r)
	if o.ManagementHandler != nil {
		if a.mgmt, err = o.ManagementHandler(r.Connections()); err != nil {
			return nil, fmt.Errorf("chatapp: management API: %w", err)
		}
	}
	a.handler = a.mux()
	return a, nil
}

// newApp returns an app without a router or HTTP handler: enough to call its
// route handlers directly, with cm recording what they push.
func newApp(cm wsroute.ConnectionManager, log *slog.Logger) *App {
	return &App{cm: cm, groups: groupsOf(cm), store: newStore(), log: log}
}

func (a *App) routes(r *wsroute.Router) {
	r.HandleFunc(ActionRegisterUser, a.registerUser)
	r.HandleFunc(ActionSendPrivateMessage, a.sendPrivateMessage)
	r.HandleFunc(ActionJoin, a.join)
	r.HandleFunc(ActionLeave, a.leave)
	r.HandleFunc(ActionSendMessage, a.sendMessage)
	r.HandleFunc(wsroute.RouteDefault, a.unknownAction)
	r.HandleFunc(wsroute.RouteDisconnect, a.disconnect)
}

// Router returns the app's router, for its connections or options.
func (a *App) Router() *wsroute.Router { return a.router }

// UserConnection returns the connection ID that registered userID, for
// operators and tests: give it to the management API to push to or
// disconnect that user.
func (a *App) UserConnection(userID string) (connectionID string, ok bool) {
	c := a.store.connOf(userID)
	return c, c != ""
}

// Handler serves the page at "/", its assets under /static/, the WebSocket
// endpoint at [EndpointPath], and, when configured, the management API
// under EndpointPath + "/".
func (a *App) Handler() http.Handler { return a.handler }

// Shutdown closes every connection with 1001 "Going away", running each
// $disconnect route, and returns when they have run or ctx is done.
func (a *App) Shutdown(ctx context.Context) error { return a.router.Shutdown(ctx) }

func (a *App) mux() http.Handler {
	mux := http.NewServeMux()
	assets, _ := fs.Sub(static, "static") // cannot fail: static is embedded
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		http.ServeFileFS(w, r, assets, "index.html")
	})
	files := http.StripPrefix("/static/", http.FileServerFS(assets))
	mux.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		files.ServeHTTP(w, r)
	})
	mux.Handle(EndpointPath, a.router)
	if a.mgmt != nil {
		mux.Handle(EndpointPath+"/", a.mgmt)
	}
	return mux
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// reply answers the caller with one frame: a two-way route's response.
func reply(v any) (*wsroute.Response, error) {
	return &wsroute.Response{StatusCode: http.StatusOK, Body: string(encode(v))}, nil
}

// fail answers the caller with an error frame.
func fail(e Error) (*wsroute.Response, error) {
	e.Type = TypeError
	return reply(e)
}

// post pushes data to a connection. A connection that is gone is being
// closed, and its $disconnect cleans up after it, so ErrGone is ignored.
func (a *App) post(ctx context.Context, connID string, data []byte) error {
	err := a.cm.PostToConnection(ctx, connID, data)
	if err != nil && !errors.Is(err, wsroute.ErrGone) {
		a.log.Warn("chat: push failed", "connectionId", connID, "err", err)
	}
	return err
}

func decode(req *wsroute.Request, v any) bool {
	return json.Unmarshal([]byte(req.Body), v) == nil
}

func connID(req *wsroute.Request) string { return req.RequestContext.ConnectionID }

var errNotRegistered = Error{Code: CodeNotRegistered, Message: "Register a user ID first."}

func invalidName(what string) string {
	return fmt.Sprintf("%s must be 1 to %d letters, digits, '_', '.' or '-'.", what, maxNameLength)
}

func (a *App) registerUser(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	var in registerUserRequest
	if !decode(req, &in) || !validName(in.UserID) {
		return fail(Error{Code: CodeInvalidRequest, Action: ActionRegisterUser, Message: invalidName("userId")})
	}
	a.order.Lock()
	defer a.order.Unlock()
	holder, _ := a.store.register(connID(req), in.UserID)
	if holder != "" {
		// The holder may be a connection that has just closed and whose
		// $disconnect has not run yet (a browser that reconnected): take
		// over from it then.
		if _, err := a.cm.GetConnection(ctx, holder); !errors.Is(err, wsroute.ErrGone) {
			return fail(Error{Code: CodeUserIDTaken, Action: ActionRegisterUser,
				Message: fmt.Sprintf("The user ID %q is taken: choose another one.", in.UserID)})
		}
		a.departLocked(ctx, holder)
		a.store.register(connID(req), in.UserID)
	}
	a.log.Info("chat: user registered", "userId", in.UserID, "connectionId", connID(req))
	a.joinGroup(ctx, presenceGroup, connID(req))
	a.post(ctx, connID(req), encode(RegistrationSuccess{Type: TypeRegistrationSuccess, UserID: in.UserID}))
	a.broadcastPresenceLocked(ctx)
	return nil, nil
}

func (a *App) sendPrivateMessage(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	var in sendPrivateMessageRequest
	if !decode(req, &in) || !validName(in.TargetUserID) {
		return fail(Error{Code: CodeInvalidRequest, Action: ActionSendPrivateMessage, Message: invalidName("targetUserId")})
	}
	if !validMessage(in.Message) {
		return fail(Error{Code: CodeInvalidRequest, Action: ActionSendPrivateMessage, TargetUserID: in.TargetUserID,
			Message: fmt.Sprintf("message must be 1 to %d characters.", MaxMessageLength)})
	}
	from := a.store.userOf(connID(req))
	if from == "" {
		e := errNotRegistered
		e.Action, e.TargetUserID = ActionSendPrivateMessage, in.TargetUserID
		return fail(e)
	}
	unknown := Error{Code: CodeUnknownUser, Action: ActionSendPrivateMessage, TargetUserID: in.TargetUserID,
		Message: fmt.Sprintf("No user %q is online.", in.TargetUserID)}
	target := a.store.connOf(in.TargetUserID)
	if target == "" {
		return fail(unknown)
	}
	msg := encode(PrivateMessage{Type: TypePrivateMessage, FromUserID: from, Message: in.Message})
	switch err := a.post(ctx, target, msg); {
	case errors.Is(err, wsroute.ErrGone):
		return fail(unknown)
	case err != nil:
		return fail(Error{Code: CodeDeliveryFailed, Action: ActionSendPrivateMessage, TargetUserID: in.TargetUserID,
			Message: fmt.Sprintf("The message could not be delivered to %q: %v.", in.TargetUserID, err)})
	}
	return nil, nil
}

// roomRequest decodes and checks a request about a room from a registered
// user; e is set when it is not one.
func (a *App) roomRequest(req *wsroute.Request, action string, withMessage bool) (in roomRequest, user string, e *Error) {
	if !decode(req, &in) || !validName(in.Room) {
		return in, "", &Error{Code: CodeInvalidRequest, Action: action, Message: invalidName("room")}
	}
	if withMessage && !validMessage(in.Message) {
		return in, "", &Error{Code: CodeInvalidRequest, Action: action, Room: in.Room,
			Message: fmt.Sprintf("message must be 1 to %d characters.", MaxMessageLength)}
	}
	if user = a.store.userOf(connID(req)); user == "" {
		e := errNotRegistered
		e.Action, e.Room = action, in.Room
		return in, "", &e
	}
	return in, user, nil
}

func (a *App) join(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	in, user, e := a.roomRequest(req, ActionJoin, false)
	if e != nil {
		return fail(*e)
	}
	a.order.Lock()
	defer a.order.Unlock()
	members, others, already := a.store.join(connID(req), in.Room)
	if !already {
		// Told to the room before the newcomer joins its group.
		a.postToGroup(ctx, roomGroup(in.Room), others, encode(RoomEvent{Type: TypeUserJoined, Room: in.Room, UserID: user}))
		a.joinGroup(ctx, roomGroup(in.Room), connID(req))
	}
	a.post(ctx, connID(req), encode(JoinSuccess{Type: TypeJoinSuccess, Room: in.Room, Members: members}))
	return nil, nil
}

func (a *App) leave(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	in, user, e := a.roomRequest(req, ActionLeave, false)
	if e != nil {
		return fail(*e)
	}
	a.order.Lock()
	defer a.order.Unlock()
	others, ok := a.store.leave(connID(req), in.Room)
	if !ok {
		return fail(Error{Code: CodeNotInRoom, Action: ActionLeave, Room: in.Room,
			Message: fmt.Sprintf("You are not in the room %q.", in.Room)})
	}
	a.leaveGroup(ctx, roomGroup(in.Room), connID(req))
	a.post(ctx, connID(req), encode(LeaveSuccess{Type: TypeLeaveSuccess, Room: in.Room}))
	a.postToGroup(ctx, roomGroup(in.Room), others, encode(RoomEvent{Type: TypeUserLeft, Room: in.Room, UserID: user}))
	return nil, nil
}

func (a *App) sendMessage(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	in, user, e := a.roomRequest(req, ActionSendMessage, true)
	if e != nil {
		return fail(*e)
	}
	a.order.Lock()
	defer a.order.Unlock()
	conns, ok := a.store.roomConns(connID(req), in.Room)
	if !ok {
		return fail(Error{Code: CodeNotInRoom, Action: ActionSendMessage, Room: in.Room,
			Message: fmt.Sprintf("Join the room %q before sending to it.", in.Room)})
	}
	a.postToGroup(ctx, roomGroup(in.Room), conns,
		encode(RoomMessage{Type: TypeRoomMessage, Room: in.Room, FromUserID: user, Message: in.Message}))
	return nil, nil
}

func (a *App) unknownAction(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	var in struct {
		Action any `json:"action"`
	}
	if !decode(req, &in) {
		return fail(Error{Code: CodeInvalidRequest,
			Message: `Frames must be JSON objects with an "action" field.`})
	}
	action, _ := in.Action.(string)
	if action == "" {
		return fail(Error{Code: CodeInvalidRequest, Message: `The "action" field is missing.`})
	}
	return fail(Error{Code: CodeUnknownAction, Action: action,
		Message: fmt.Sprintf("Unknown action %q: use one of %s.", action, strings.Join([]string{
			ActionRegisterUser, ActionSendPrivateMessage, ActionJoin, ActionLeave, ActionSendMessage}, ", "))})
}

func (a *App) disconnect(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	a.order.Lock()
	defer a.order.Unlock()
	a.departLocked(ctx, connID(req))
	return nil, nil
}

// departLocked forgets a connection and tells the rooms it was in and, when
// it was registered, everyone. When the connection has closed, the router
// has already taken it out of every group; otherwise (another connection
// took over its user ID) the app does.
func (a *App) departLocked(ctx context.Context, conn string) {
	d, ok := a.store.remove(conn)
	if !ok {
		return
	}
	a.leaveGroup(ctx, presenceGroup, conn)
	for room, others := range d.rooms {
		a.leaveGroup(ctx, roomGroup(room), conn)
		a.postToGroup(ctx, roomGroup(room), others, encode(RoomEvent{Type: TypeUserLeft, Room: room, UserID: d.userID}))
	}
	a.broadcastPresenceLocked(ctx)
}

// broadcastPresenceLocked sends the list of users online to every
// registered user: the members of presenceGroup.
func (a *App) broadcastPresenceLocked(ctx context.Context) {
	users, conns := a.store.presence()
	if users == nil {
		users = []string{}
	}
	a.postToGroup(ctx, presenceGroup, conns, encode(Presence{Type: TypePresence, Users: users}))
}

// Rooms and presence are wsroute groups: a room's members are the group
// "room:<name>", registered users the group "presence". A group post copies
// the frame once for all members and never waits for a slow one, and the
// router takes a connection out of its groups when it closes. The store
// still knows who is where, for member lists and for the userLeft notices a
// departure sends (a connection is in no group any more by the time its
// $disconnect runs).
const presenceGroup = "presence"

func roomGroup(room string) string { return "room:" + room }

// groupsOf returns the GroupManager of cm: a router's has one.
func groupsOf(cm wsroute.ConnectionManager) wsroute.GroupManager {
	if g, ok := cm.(interface{ Groups() wsroute.GroupManager }); ok {
		return g.Groups()
	}
	return nil
}

func (a *App) joinGroup(ctx context.Context, group, conn string) {
	if a.groups == nil {
		return
	}
	if err := a.groups.Join(ctx, group, conn); err != nil && !errors.Is(err, wsroute.ErrGone) {
		a.log.Warn("chat: join failed", "group", group, "connectionId", conn, "err", err)
	}
}

func (a *App) leaveGroup(ctx context.Context, group, conn string) {
	if a.groups != nil {
		_ = a.groups.Leave(ctx, group, conn) // fails only for an invalid name, which ours never are
	}
}

// postToGroup posts data to the members of group. A ConnectionManager
// without groups (a wsroutetest.Recorder, when the handlers are called
// directly) gets one post per member of conns, the store's view of the group.
func (a *App) postToGroup(ctx context.Context, group string, conns []string, data []byte) {
	if a.groups == nil {
		for _, c := range conns {
			a.post(ctx, c, data)
		}
		return
	}
	res, err := a.groups.PostToGroup(ctx, group, data)
	switch {
	case err != nil:
		a.log.Warn("chat: group post failed", "group", group, "err", err)
	case res.Skipped > 0:
		a.log.Warn("chat: group post skipped slow members", "group", group, "skipped", res.Skipped)
	}
}
