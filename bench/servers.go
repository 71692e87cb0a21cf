package main

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"
	"github.com/olahol/melody"

	"github.com/wsroute/wsroute"
)

// wsrouteServer routes on $request.body.action: "echo" is a two-way route
// that returns the body; $connect checks the token. It keeps no list of its
// connections: the router's own table serves the control endpoints
// (ConnectionCount, OpenConnections) and the fan-out (Broadcast), where the
// other servers keep a map of theirs.
type wsrouteServer struct {
	router *wsroute.Router
	mgmt   http.Handler
}

func newWsrouteServer() (*wsrouteServer, error) {
	r, err := wsroute.New(nil)
	if err != nil {
		return nil, err
	}
	s := &wsrouteServer{router: r}
	r.HandleFunc(wsroute.RouteConnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		if req.QueryStringParameters["token"] != token {
			return &wsroute.Response{StatusCode: http.StatusUnauthorized}, nil
		}
		return &wsroute.Response{StatusCode: http.StatusOK}, nil
	})
	r.HandleFunc("echo", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{StatusCode: http.StatusOK, Body: req.Body}, nil
	})
	s.mgmt = http.StripPrefix("/mgmt", wsroute.NewManagementHandler(r.Connections(), &wsroute.ManagementOptions{
		BearerTokens: []string{bearerToken},
	}))
	return s, nil
}

func (s *wsrouteServer) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

func (s *wsrouteServer) connectionIDs() []string {
	ids := make([]string, 0, s.router.ConnectionCount())
	for c := range s.router.OpenConnections() {
		ids = append(ids, c.ConnectionID)
	}
	return ids
}

func (s *wsrouteServer) count() int { return s.router.ConnectionCount() }

func (s *wsrouteServer) broadcast(msg []byte) int {
	// FANOUT: one group post to every connection (Broadcast): the frame is
	// copied once and written by the router's bounded writer pool.
	res, err := s.router.Groups().Broadcast(context.Background(), msg)
	if err != nil {
		return 0
	}
	return res.Delivered
}

// control adds wsroute's own endpoints: the management API under /mgmt,
// the connections' IDs, and an in-process push loop to compare it with.
func (s *wsrouteServer) control(mux *http.ServeMux) {
	mux.Handle("/mgmt/", s.mgmt)
	mux.HandleFunc("GET /ids", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.connectionIDs())
	})
	// POST /push?ms=D&workers=W&max=M pushes the request's body with
	// PostToConnection from W goroutines, round-robin over the connections,
	// for D milliseconds or M pushes, and reports how many were queued and
	// how many refused with ErrLimitExceeded.
	mux.HandleFunc("POST /push", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ms, _ := strconv.Atoi(q.Get("ms"))
		workers, _ := strconv.Atoi(q.Get("workers"))
		limit, _ := strconv.ParseInt(q.Get("max"), 10, 64)
		if limit <= 0 {
			limit = math.MaxInt64
		}
		msg, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ok, limited, err := s.push(time.Duration(ms)*time.Millisecond, max(workers, 1), limit, msg)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]int64{"ok": ok, "limited": limited})
	})
}

func (s *wsrouteServer) push(d time.Duration, workers int, limit int64, msg []byte) (ok, limited int64, err error) {
	ids := s.connectionIDs()
	if len(ids) == 0 {
		return 0, 0, errors.New("no connections")
	}
	ctx := context.Background()
	cm := s.router.Connections()
	deadline := time.Now().Add(d)
	var (
		wg          sync.WaitGroup
		nOK, nLimit atomic.Int64
		issued      atomic.Int64
		firstErr    atomic.Value
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ { // at least 64 pushes per worker, however late it starts
				if issued.Add(1) > limit || k > 0 && k%64 == 0 && time.Now().After(deadline) {
					return
				}
				switch err := cm.PostToConnection(ctx, ids[(w+k*workers)%len(ids)], msg); {
				case err == nil:
					nOK.Add(1)
				case errors.Is(err, wsroute.ErrLimitExceeded):
					nLimit.Add(1)
					time.Sleep(50 * time.Microsecond)
				default:
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e, _ := firstErr.Load().(error); e != nil {
		return 0, 0, e
	}
	return nOK.Load(), nLimit.Load(), nil
}

// coderServer is raw coder/websocket. detached: the handler returns after
// the upgrade and the read loop runs on its own goroutine with a
// non-cancellable context, the transport's floor (DESIGN.md §11). Otherwise
// the naive layout of coder's examples: the read loop in the HTTP handler,
// with r.Context() passed to every Read and Write.
type coderServer struct {
	detached bool

	mu    sync.Mutex
	conns map[*coderConn]struct{}
}

type coderConn struct {
	c   *coder.Conn
	ctx context.Context
}

func (s *coderServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !authorized(w, r) {
		return
	}
	c, err := coder.Accept(w, r, nil)
	if err != nil {
		return
	}
	cc := &coderConn{c: c, ctx: r.Context()}
	if s.detached {
		cc.ctx = context.Background()
	}
	s.mu.Lock()
	s.conns[cc] = struct{}{}
	s.mu.Unlock()
	if s.detached {
		go s.readLoop(cc)
		return
	}
	s.readLoop(cc)
}

func (s *coderServer) readLoop(cc *coderConn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, cc)
		s.mu.Unlock()
		cc.c.CloseNow()
	}()
	for {
		typ, b, err := cc.c.Read(cc.ctx)
		if err != nil {
			return
		}
		if isEcho(b) {
			if cc.c.Write(cc.ctx, typ, b) != nil {
				return
			}
		}
	}
}

func (s *coderServer) snapshot() []*coderConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*coderConn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

func (s *coderServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// broadcast writes msg to every connection from a pool of GOMAXPROCS
// writers.
func (s *coderServer) broadcast(msg []byte) int {
	return forEachParallel(s.snapshot(), func(cc *coderConn) bool {
		return cc.c.Write(cc.ctx, coder.MessageText, msg) == nil
	})
}

// gorillaServer is gorilla/websocket as its chat example has it: the
// handler returns after the upgrade, a goroutine reads, and writes are
// serialised by a mutex per connection (gorilla allows one writer at a
// time).
type gorillaServer struct {
	upgrader websocket.Upgrader

	mu    sync.Mutex
	conns map[*gorillaConn]struct{}
}

type gorillaConn struct {
	mu sync.Mutex // held while writing
	c  *websocket.Conn
}

func newGorillaServer() *gorillaServer {
	return &gorillaServer{conns: map[*gorillaConn]struct{}{}}
}

func (s *gorillaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !authorized(w, r) {
		return
	}
	c, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	gc := &gorillaConn{c: c}
	s.mu.Lock()
	s.conns[gc] = struct{}{}
	s.mu.Unlock()
	go s.readLoop(gc)
}

func (s *gorillaServer) readLoop(gc *gorillaConn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, gc)
		s.mu.Unlock()
		gc.c.Close()
	}()
	for {
		typ, b, err := gc.c.ReadMessage()
		if err != nil {
			return
		}
		if isEcho(b) {
			gc.mu.Lock()
			err := gc.c.WriteMessage(typ, b)
			gc.mu.Unlock()
			if err != nil {
				return
			}
		}
	}
}

func (s *gorillaServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// broadcast prepares the frame once and writes it to every connection from
// a pool of GOMAXPROCS writers.
func (s *gorillaServer) broadcast(msg []byte) int {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, msg)
	if err != nil {
		return 0
	}
	s.mu.Lock()
	conns := make([]*gorillaConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	return forEachParallel(conns, func(gc *gorillaConn) bool {
		gc.mu.Lock()
		defer gc.mu.Unlock()
		return gc.c.WritePreparedMessage(pm) == nil
	})
}

// melodyServer is olahol/melody with its defaults: the read loop in the
// handler, a writer goroutine per session, Broadcast through its hub.
type melodyServer struct{ m *melody.Melody }

func newMelodyServer() *melodyServer {
	m := melody.New()
	m.HandleMessage(func(s *melody.Session, b []byte) {
		if isEcho(b) {
			s.Write(b)
		}
	})
	return &melodyServer{m: m}
}

func (s *melodyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !authorized(w, r) {
		return
	}
	s.m.HandleRequest(w, r)
}

func (s *melodyServer) count() int { return s.m.Len() }

func (s *melodyServer) broadcast(msg []byte) int {
	if s.m.Broadcast(msg) != nil {
		return 0
	}
	return s.m.Len()
}
