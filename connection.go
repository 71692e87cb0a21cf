package wsroute

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/coder/websocket"
)

// ConnectionManager pushes to, inspects and closes connections by ID, as API
// Gateway's @connections API does. [Router.Connections] returns the one for a
// router's own connections; [NewManagementHandler] serves any ConnectionManager
// over HTTP. Implementations are safe for concurrent use.
type ConnectionManager interface {
	// PostToConnection sends data to the connection as one text frame, or
	// as one binary frame when data is not valid UTF-8.
	// It queues the frame and returns without waiting for the client. It
	// returns ErrGone, ErrLimitExceeded or ErrPayloadTooLarge.
	PostToConnection(ctx context.Context, connectionID string, data []byte) error

	// GetConnection describes the connection, or returns ErrGone.
	GetConnection(ctx context.Context, connectionID string) (*Connection, error)

	// DeleteConnection starts closing the connection with close code 1000 and
	// returns at once, without waiting for the client; the connection's
	// $disconnect route then runs with 1000 "Connection Closed Normally". It
	// returns ErrGone for unknown and already closing connections.
	DeleteConnection(ctx context.Context, connectionID string) error
}

type connectionsKey struct{}

// ContextWithConnections returns a copy of ctx that carries cm, for
// [ConnectionsFromContext]. The router does this for every handler; use it to
// call a handler directly, in a unit test or from your own dispatcher.
func ContextWithConnections(ctx context.Context, cm ConnectionManager) context.Context {
	return context.WithValue(ctx, connectionsKey{}, cm)
}

// ConnectionsFromContext returns the ConnectionManager of the router that is
// running the handler ctx was passed to. It never returns nil: when ctx did
// not come from a router (a handler called directly, in a unit test that
// forgot [ContextWithConnections]), it returns a ConnectionManager whose
// methods panic with a message that says what to do. [LookupConnections]
// reports whether ctx carries one.
func ConnectionsFromContext(ctx context.Context) ConnectionManager {
	if cm, ok := LookupConnections(ctx); ok {
		return cm
	}
	return noConnections{}
}

// Close reasons, as API Gateway reports them in $disconnect events.
const (
	reasonNormal    = "Connection Closed Normally"
	reasonGoingAway = "Going away"
	reasonNoStatus  = "Client-side close frame status not set"
	reasonTooBig    = "Message too big"
	reasonBinary    = "Binary frames are not supported"
	reasonBadUTF8   = "Text frame is not valid UTF-8"
)

type connState uint8

const (
	stateOpen    connState = iota
	stateClosing           // the router started a close; code and reason say why
	stateClosed            // the read loop ended; $disconnect runs or ran
)

// frame is one queued outbound message.
type frame struct {
	data     string        // the payload, or when prepared the whole encoded frame (wirewrite.go)
	done     chan struct{} // when not nil, closed once the frame is written or dropped
	binary   bool
	prepared bool
}

// conn is one accepted connection. Its read loop runs on a goroutine of its
// own; a writer goroutine exists only while frames are queued; a timer (not a
// goroutine) watches the idle, duration and ping deadlines.
type conn struct {
	r           *Router
	ws          *websocket.Conn // the transport's connection, with compression; set by start
	id          string
	connectedAt int64     // unix milliseconds
	sourceIP    string    // requestContext.identity.sourceIp
	userAgent   string    // requestContext.identity.userAgent
	identity    *Identity // the whole identity, when AWS_IAM or an API key set more; nil otherwise
	domainName  string
	authorizer  map[string]any
	auth        *connAuth     // per-message IAM policy and usage plan; nil without them
	lastActive  atomic.Int64  // unix nanoseconds of the last message either way
	handling    atomic.Uint64 // odd while the read loop runs a handler or waits for its reply to leave, reading no pongs
	writeSince  atomic.Int64  // unix nanoseconds the write under way began; 0 when none
	readSince   atomic.Int64  // unix nanoseconds the read loop began to read the next message, or 1 when no message had begun then; 0 while it does not read
	wire        wireConn      // the socket as the transport reads it; set by the handshake

	mu        sync.Mutex
	code      websocket.StatusCode // why the router closed it, once state > stateOpen
	reason    string
	state     connState
	closeSent bool    // the writer has begun the close handshake
	closeDone bool    // the writer has written the close frame, when the router writes frames itself
	started   bool    // the handshake is complete: the socket is c.wire
	guessed   bool    // code and reason are a failed write's guess, which the read loop's outcome replaces
	writing   bool    // a goroutine owns writes: the reader replying, or the writer
	queue     []frame // frames waiting for the writer
	queued    int     // bytes in queue
	timer     *time.Timer
	nextPing  int64     // unix nanoseconds of the next ping
	pinging   *pingWait // the keepalive ping waiting for its pong, when the router reads frames itself

	slot [1]frame // the queue's storage for a group post to an idle connection; guarded by mu (groups.go)

	obs *upgradeObs // the Observer's state of the connection; nil without one
}

func (r *Router) newConn(req *http.Request, now time.Time) *conn {
	c := &conn{
		r:           r,
		id:          r.ids.next(),
		connectedAt: now.UnixMilli(),
		sourceIP:    r.proxies.clientIP(req),
		userAgent:   req.UserAgent(),
		domainName:  r.opts.DomainName,
	}
	if c.domainName == "" {
		c.domainName = req.Host
	}
	return c
}

// identityValue returns requestContext.identity of the connection's events.
func (c *conn) identityValue() Identity {
	if c.identity != nil {
		return *c.identity
	}
	return Identity{SourceIP: c.sourceIP, UserAgent: c.userAgent}
}

// fullIdentity returns the connection's identity for the handshake to add
// to, making it first.
func (c *conn) fullIdentity() *Identity {
	if c.identity == nil {
		c.identity = &Identity{SourceIP: c.sourceIP, UserAgent: c.userAgent}
	}
	return c.identity
}

func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// event returns an event of the connection with the fields every event has.
func (c *conn) event(routeKey, eventType, requestID string, now time.Time) *Request {
	ev := new(Request)
	c.fillEvent(ev, routeKey, eventType, requestID, now)
	return ev
}

// fillEvent sets the fields every event has, field by field: ev is new, and
// its other fields stay as they are.
func (c *conn) fillEvent(ev *Request, routeKey, eventType, requestID string, now time.Time) {
	r := c.r
	ev.StageVariables = r.opts.StageVariables
	rc := &ev.RequestContext
	rc.RouteKey = routeKey
	rc.EventType = eventType
	rc.ExtendedRequestID = requestID
	rc.RequestTime = r.clock.format(now)
	rc.MessageDirection = "IN"
	rc.Stage = r.opts.Stage
	rc.ConnectedAt = c.connectedAt
	rc.RequestTimeEpoch = now.UnixMilli()
	if c.identity != nil {
		rc.Identity = *c.identity
	} else {
		rc.Identity.SourceIP, rc.Identity.UserAgent = c.sourceIP, c.userAgent
	}
	rc.RequestID = requestID
	rc.DomainName = c.domainName
	rc.ConnectionID = c.id
	rc.APIID = r.opts.APIID
	rc.Authorizer = c.authorizer
}

// wsHeaderNames restores the spelling API Gateway uses for the headers that
// Go's canonical form changes.
var wsHeaderNames = map[string]string{
	"Sec-Websocket-Key":        "Sec-WebSocket-Key",
	"Sec-Websocket-Version":    "Sec-WebSocket-Version",
	"Sec-Websocket-Extensions": "Sec-WebSocket-Extensions",
	"Sec-Websocket-Protocol":   "Sec-WebSocket-Protocol",
}

func (c *conn) connectEvent(req *http.Request, now time.Time) *Request {
	ev := c.event(RouteConnect, EventConnect, eventID(), now)
	// Sized for what they will hold, Host and the four forwarding headers
	// included, so that neither map grows while it is filled, and one that
	// holds at most 8 stays a small map.
	size := len(req.Header) + 5
	for _, hop := range [...]string{"Connection", "Upgrade"} {
		if _, ok := req.Header[hop]; ok {
			size--
		}
	}
	ev.Headers = make(map[string]string, size)
	ev.MultiValueHeaders = make(map[string][]string, size)
	n := 1
	for _, vs := range req.Header {
		n += len(vs)
	}
	all := make([]string, 0, n) // every value, copied with one allocation
	all = append(all, req.Host)
	ev.Headers["Host"] = req.Host
	ev.MultiValueHeaders["Host"] = all[0:1:1]
	for k, vs := range req.Header {
		if k == "Connection" || k == "Upgrade" || len(vs) == 0 {
			continue
		}
		if n, ok := wsHeaderNames[k]; ok {
			k = n
		}
		ev.Headers[k] = vs[len(vs)-1]
		i := len(all)
		all = append(all, vs...)
		ev.MultiValueHeaders[k] = all[i:len(all):len(all)]
	}
	c.r.proxies.forwardHeaders(ev, req) // X-Forwarded-*, X-Amzn-Trace-Id
	if req.URL.RawQuery != "" {
		q := req.URL.Query()
		ev.QueryStringParameters = make(map[string]string, len(q))
		ev.MultiValueQueryStringParameters = q
		for k, vs := range q {
			ev.QueryStringParameters[k] = vs[len(vs)-1]
		}
	}
	return ev
}

// register makes the connection reachable once $connect has returned, before
// the handshake response is written. Until start, the handshake goroutine
// holds c.writing, so frames posted meanwhile wait in the queue.
func (c *conn) register() {
	c.lastActive.Store(c.connectedAt * int64(time.Millisecond))
	c.writing = true
	if !c.r.conns.add(c) {
		c.close(websocket.StatusGoingAway, reasonGoingAway) // Shutdown has begun
		return
	}
	c.backplaneHold()
}

// start serves the connection once the handshake is complete: the read loop
// starts, the timer is armed, and a writer starts only when something was
// queued or a close was requested meanwhile.
func (c *conn) start(ws *websocket.Conn) {
	r := c.r
	if ws != nil {
		ws.SetReadLimit(r.opts.MaxMessageSize)
	}
	now := time.Now()
	c.mu.Lock()
	c.ws, c.started = ws, true
	if c.state == stateOpen {
		c.nextPing = now.Add(r.opts.PingInterval).UnixNano()
		c.armTimerLocked(now)
	} else {
		_ = c.wire.SetDeadline(now.Add(r.opts.CloseTimeout)) // a close came before the socket
	}
	r.wg.Add(1) // the read loop; ServeHTTP's count is still held
	if len(c.queue) > 0 || (c.code != 0 && !c.closeSent) {
		r.wg.Add(1)
		go c.writeLoop() // what was posted or closed before the socket existed
	} else {
		c.writing = false
	}
	c.mu.Unlock()
	go c.readLoop()
}

func (c *conn) readLoop() {
	defer c.r.wg.Done()
	for {
		c.readResumes()
		buf := getBuffer()
		binary, err := c.readMessage(buf)
		if err != nil {
			putBuffer(buf)
			code, reason := c.readError(err)
			if c.wire.rawData && code == websocket.StatusMessageTooBig {
				// The client may finish writing the refused message, then
				// answer the close frame: the wireConn hands on its close
				// frame only, and this loop reads it (wireread.go). What
				// is buffered is the start of the refused frame's header,
				// when it came apart from the rest.
				_, _ = c.wire.br.Discard(c.wire.br.Buffered())
				continue
			}
			c.finish(code, reason)
			return
		}
		c.readSince.Store(0) // the read loop reads no more until the next message
		now := time.Now()
		c.lastActive.Store(now.UnixNano())
		c.observeFrame(false, buf.Len(), 0, nil)
		c.mu.Lock()
		open := c.state == stateOpen
		c.mu.Unlock()
		if !open { // a close is under way: data frames are dropped
			putBuffer(buf)
			continue
		}
		switch {
		case binary && !c.r.opts.AcceptBinary:
			c.r.log.Info("wsroute: binary frame refused", "connectionId", c.id)
			c.close(websocket.StatusUnsupportedData, reasonBinary)
		case !binary && !utf8.Valid(buf.Bytes()):
			c.r.log.Info("wsroute: text frame with invalid UTF-8", "connectionId", c.id)
			c.close(websocket.StatusInvalidFramePayloadData, reasonBadUTF8)
		default:
			c.dispatch(buf.Bytes(), binary, now)
		}
		putBuffer(buf)
	}
}

func (c *conn) isOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stateOpen
}

// readError maps the error that ended the read loop to the code and reason
// that $disconnect reports when the router did not start the close itself.
func (c *conn) readError(err error) (websocket.StatusCode, string) {
	if code, reason, ok := c.refusedFrame(err); ok {
		return code, reason
	}
	if errors.Is(err, websocket.ErrMessageTooBig) {
		c.r.log.Info("wsroute: message over the size limit", "connectionId", c.id, "limit", c.r.opts.MaxMessageSize)
		c.close(websocket.StatusMessageTooBig, reasonTooBig)
		return websocket.StatusMessageTooBig, reasonTooBig
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.StatusNoStatusRcvd {
			return ce.Code, reasonNoStatus
		}
		return ce.Code, ce.Reason
	}
	return websocket.StatusAbnormalClosure, ""
}

// dispatch routes one message, a text frame that is valid UTF-8 or a binary
// frame, and sends the handler's answer, if any. The event gets a copy of
// msg, which the caller may reuse once dispatch returns.
func (c *conn) dispatch(msg []byte, binary bool, now time.Time) {
	r := c.r
	ev, messageID, requestID := messageEvent(msg, binary)
	key := RouteDefault
	var h Handler
	if !binary {
		// Keys starting with "$" never select a custom route: $connect and
		// $disconnect are not reachable by a message. The key may be a
		// substring of the event's body, never of msg.
		if k, ok := r.expr.evaluateText(ev.Body); ok && k != "" && k[0] != '$' {
			if h = r.route(k); h != nil {
				key = k
			}
		}
	}
	if h == nil {
		h = r.route(RouteDefault)
	}
	if r.throttle.refuse(c, key) {
		return
	}
	if c.auth != nil && c.auth.refuse(c, key) {
		c.refused(key, "", "", now, http.StatusForbidden)
		return
	}
	if h == nil {
		c.refused(key, requestID, messageID, now, http.StatusForbidden)
		c.reply(frame{data: errorFrame("Forbidden", c.id, requestID)})
		return
	}
	c.fillEvent(ev, key, EventMessage, requestID, now)
	ev.RequestContext.MessageID = messageID
	c.handling.Add(1)
	resp, err := c.handle(r.ctx, h, ev)
	c.handling.Add(1)
	switch {
	case err != nil:
		_, msg := integrationFailure(err)
		c.reply(frame{data: errorFrame(msg, c.id, requestID)})
	case resp != nil && resp.Body != "":
		f := frame{data: resp.Body}
		if resp.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(resp.Body)
			if err != nil {
				r.log.Error("wsroute: response body is not base64", "routeKey", key, "connectionId", c.id)
				c.reply(frame{data: errorFrame("Internal server error", c.id, requestID)})
				return
			}
			f = frame{data: string(b), binary: true}
		}
		c.reply(f)
	}
}

// errorFrame is the frame API Gateway sends when a message finds no route or
// its integration fails, spacing included.
func errorFrame(message, connectionID, requestID string) string {
	return `{"message": "` + message + `", "connectionId":"` + connectionID + `", "requestId":"` + requestID + `"}`
}

// post queues f for the writer. It never blocks on the client.
func (c *conn) post(f frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.enqueueLocked(f)
	c.observeFrame(true, len(f.data), len(c.queue), err)
	return err
}

func (c *conn) enqueueLocked(f frame) error {
	if c.state != stateOpen {
		return ErrGone
	}
	o := &c.r.opts
	if len(c.queue) >= o.SendQueueSize || c.queued+f.size() > o.SendQueueBytes {
		return ErrLimitExceeded
	}
	c.queue = append(c.queue, f)
	c.queued += f.size()
	c.startWriterLocked()
	return nil
}

func (c *conn) startWriterLocked() {
	if !c.writing {
		c.writing = true
		c.r.wg.Add(1) // the read loop's count is held while state < stateClosed
		go c.writeLoop()
	}
}

// reply sends a handler's answer from the read loop. When nothing else is
// being written it writes on the read loop's goroutine, saving a goroutine
// start per message; otherwise it queues behind what is waiting.
func (c *conn) reply(f frame) {
	c.mu.Lock()
	if c.writing || len(c.queue) > 0 || c.state != stateOpen {
		// Wait until the writer has written it: the read loop must not
		// read on, and answer a close frame that follows, before the reply
		// to the message that came first has left.
		f.done = make(chan struct{})
		err := c.enqueueLocked(f)
		c.observeFrame(true, len(f.data), len(c.queue), err)
		c.mu.Unlock()
		if err != nil {
			c.r.log.Warn("wsroute: reply dropped", "connectionId", c.id, "err", err)
			return
		}
		c.handling.Add(1) // no pong is read meanwhile, as while a handler runs
		<-f.done
		c.handling.Add(1)
		return
	}
	c.writing = true
	c.mu.Unlock()
	c.observeFrame(true, len(f.data), 0, nil)
	c.write(f)
	c.mu.Lock()
	if len(c.queue) > 0 || (c.state == stateClosing && !c.closeSent) {
		// Hand over what arrived meanwhile, and a close requested meanwhile
		// (a failed write requests one); c.writing stays true.
		c.r.wg.Add(1)
		go c.writeLoop()
	} else {
		c.writing = false
	}
	c.mu.Unlock()
}

// write writes one frame. A failed write means the socket is unusable: the
// connection is aborted so that the read loop ends too.
func (c *conn) write(f frame) bool {
	// Recorded before the write: a client that has read the frame must not
	// see an older lastActiveAt.
	now := time.Now().UnixNano()
	c.lastActive.Store(now)
	c.writeSince.Store(now)
	var err error
	if c.wire.rawData {
		err = c.wire.writeFrame(f)
	} else {
		typ := websocket.MessageText
		if f.binary {
			typ = websocket.MessageBinary
		}
		err = c.ws.Write(context.Background(), typ, unsafe.Slice(unsafe.StringData(f.data), len(f.data)))
	}
	c.writeSince.Store(0)
	if err != nil {
		c.writeFailed()
		return false
	}
	return true
}

// writeLoop drains the queue, then performs a close the router requested,
// then exits. The caller has set c.writing and counted it in r.wg.
func (c *conn) writeLoop() {
	defer c.r.wg.Done()
	c.drain()
}

// drain is writeLoop without the release of its count in r.wg, which the
// writer pool releases for many members at once.
func (c *conn) drain() {
	ok := true
	for {
		c.mu.Lock()
		if !ok {
			releaseFrames(c.queue)
			c.queue, c.queued = nil, 0
		}
		if len(c.queue) == 0 {
			// c.code is set once the router starts a close. The read loop
			// may have ended meanwhile (stateClosed): the close must still
			// be performed, or nothing releases the socket.
			if c.code != 0 && !c.closeSent {
				c.closeSent = true
				code, reason := c.code, c.reason
				c.mu.Unlock()
				// Bounded by the socket deadline that close set.
				if c.wire.rawData {
					c.writeClose(code, reason)
				} else {
					_ = c.ws.Close(code, reason)
				}
				continue
			}
			c.writing = false
			c.slot[0] = frame{} // no batch holds it now: keep no payload alive (groups.go)
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue, c.queued = nil, 0
		c.mu.Unlock()
		for i, f := range batch {
			if ok = c.write(f); !ok {
				releaseFrames(batch[i:])
				break
			}
			if f.done != nil {
				close(f.done)
			}
		}
	}
}

// close starts a close the router decided on: queued frames are written, then
// the close frame; the socket is closed after CloseTimeout whatever the client
// does. It never waits. It reports false when the connection was not open.
func (c *conn) close(code websocket.StatusCode, reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return false
	}
	c.state, c.code, c.reason = stateClosing, code, reason
	c.stopTimerLocked()
	if c.started {
		_ = c.wire.SetDeadline(time.Now().Add(c.r.opts.CloseTimeout))
	}
	c.startWriterLocked()
	return true
}

// abort closes the socket at once, without a close handshake.
func (c *conn) abort(code websocket.StatusCode, reason string) {
	c.close(code, reason) // records why, unless a close was already under way
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started { // else start sets the close's deadline
		_ = c.wire.SetDeadline(time.Unix(1, 0))
	}
}

// finish runs when the read loop ends: the connection leaves the table and its
// $disconnect route runs, exactly once.
func (c *conn) finish(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	wasOpen := c.state == stateOpen
	if !wasOpen && !c.guessed {
		code, reason = c.code, c.reason // the router's reason wins
	}
	c.state = stateClosed
	c.stopTimerLocked()
	// The client closed or the network failed, and no close is under way;
	// or the router's close frame has gone out, and the client answered or
	// the deadline passed: release the socket. This does not wait.
	release := (wasOpen || c.closeDone) && c.started
	c.mu.Unlock()
	c.r.conns.remove(c)
	c.backplaneRelease()
	c.r.groups.leaveAll(c) // before $disconnect runs: it is in no group any more
	if release {
		c.closeSocket()
	}
	c.closed(int(code), reason)
	c.disconnect(code, reason)
}

// disconnect runs the $disconnect route.
func (c *conn) disconnect(code websocket.StatusCode, reason string) {
	h := c.r.route(RouteDisconnect)
	if h == nil {
		return
	}
	now := time.Now()
	ev := c.event(RouteDisconnect, EventDisconnect, eventID(), now)
	ev.RequestContext.DisconnectStatusCode = int(code)
	ev.RequestContext.DisconnectReason = reason
	ev.Headers = map[string]string{"Host": c.domainName, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
	vs := []string{c.domainName, "", "", ""} // one array for the four values
	ev.MultiValueHeaders = map[string][]string{"Host": vs[0:1:1], "x-api-key": vs[1:2:2], "X-Forwarded-For": vs[2:3:3], "x-restapi": vs[3:4:4]}
	_, _ = c.handle(c.r.ctx, h, ev)
}

func (c *conn) info() *Connection {
	return &Connection{
		ConnectionID: c.id,
		ConnectedAt:  time.UnixMilli(c.connectedAt),
		LastActiveAt: time.Unix(0, c.lastActive.Load()).Truncate(time.Millisecond),
		Identity:     Identity{SourceIP: c.sourceIP, UserAgent: c.userAgent}, // as API Gateway
		Authorizer:   c.authorizer,
	}
}

// localConnections is the ConnectionManager of a Router's own connections,
// which hands other IDs to the Backplane unless heldOnly is set.
type localConnections struct {
	r        *Router
	heldOnly bool
}

var _ ConnectionManager = (*localConnections)(nil)

func (m *localConnections) PostToConnection(ctx context.Context, connectionID string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(data) > m.r.opts.MaxPostSize {
		return ErrPayloadTooLarge
	}
	c := m.r.conns.get(connectionID)
	if c == nil {
		if b := m.remote(); b != nil {
			return b.PostToConnection(ctx, connectionID, data)
		}
		return ErrGone
	}
	return c.post(frame{data: string(data), binary: !utf8.Valid(data)})
}

func (m *localConnections) GetConnection(ctx context.Context, connectionID string) (*Connection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := m.r.conns.get(connectionID)
	if b := m.remote(); c == nil && b != nil {
		return b.GetConnection(ctx, connectionID)
	}
	if c == nil || !c.isOpen() {
		return nil, ErrGone
	}
	return c.info(), nil
}

func (m *localConnections) DeleteConnection(ctx context.Context, connectionID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := m.r.conns.get(connectionID)
	if b := m.remote(); c == nil && b != nil {
		return b.DeleteConnection(ctx, connectionID)
	}
	if c == nil || !c.close(websocket.StatusNormalClosure, reasonNormal) {
		return ErrGone
	}
	return nil
}
