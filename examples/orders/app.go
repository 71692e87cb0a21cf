package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/wsroute/wsroute"
)

// The statuses an order goes through, in order.
var statuses = []string{"ORDER_RECEIVED", "PAYMENT_CONFIRMED", "PREPARING", "SHIPPED", "DELIVERED"}

// maxOrders bounds the orders the example tracks; $connect for a new order
// beyond it is refused with 503.
const maxOrders = 1000

var orderIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// statusMessage is what clients receive: pushed on every change, and as the
// answer to any message they send.
type statusMessage struct {
	Type      string `json:"type"` // "orderStatus"
	OrderID   string `json:"orderId"`
	Status    string `json:"status"`
	Step      int    `json:"step"`  // 1-based position of Status in the statuses
	Steps     int    `json:"steps"` // how many statuses there are
	UpdatedAt string `json:"updatedAt"`
}

type order struct {
	step      int // index into statuses
	updatedAt time.Time
	watchers  map[string]struct{} // connection IDs
}

// orderStore keeps the orders and who watches each. Safe for concurrent use.
type orderStore struct {
	mu     sync.Mutex
	orders map[string]*order
	byConn map[string]string // connection ID → order ID
}

func newOrderStore() *orderStore {
	return &orderStore{orders: map[string]*order{}, byConn: map[string]string{}}
}

// watch registers connID's interest in orderID, creating the order when it
// is new. It fails when the store is full.
func (s *orderStore) watch(connID, orderID string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[orderID]
	if o == nil {
		if len(s.orders) >= maxOrders {
			return errors.New("too many orders")
		}
		o = &order{updatedAt: now, watchers: map[string]struct{}{}}
		s.orders[orderID] = o
	}
	o.watchers[connID] = struct{}{}
	s.byConn[connID] = orderID
	return nil
}

// unwatch forgets connID.
func (s *orderStore) unwatch(connID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.byConn[connID]; ok {
		delete(s.orders[id].watchers, connID)
		delete(s.byConn, connID)
	}
}

// watched returns the order connID watches.
func (s *orderStore) watched(connID string) (statusMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byConn[connID]
	if !ok {
		return statusMessage{}, false
	}
	return s.orders[id].message(id), true
}

// watchers returns how many connections watch orderID.
func (s *orderStore) watchers(orderID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.orders[orderID]; o != nil {
		return len(o.watchers)
	}
	return 0
}

func (o *order) message(id string) statusMessage {
	return statusMessage{
		Type:      "orderStatus",
		OrderID:   id,
		Status:    statuses[o.step],
		Step:      o.step + 1,
		Steps:     len(statuses),
		UpdatedAt: o.updatedAt.UTC().Format(time.RFC3339Nano),
	}
}

// change is one status change and who must hear of it.
type change struct {
	msg      statusMessage
	watchers []string
}

// advance moves every undelivered order one status on and returns the
// changes, in order-ID order.
func (s *orderStore) advance(now time.Time) []change {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []change
	for id, o := range s.orders {
		if o.step == len(statuses)-1 {
			continue
		}
		o.step++
		o.updatedAt = now
		c := change{msg: o.message(id)}
		for w := range o.watchers {
			c.watchers = append(c.watchers, w)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b change) int {
		switch {
		case a.msg.OrderID < b.msg.OrderID:
			return -1
		case a.msg.OrderID > b.msg.OrderID:
			return 1
		}
		return 0
	})
	return out
}

// app is the order-status service: clients connect to /ws?orderId=… and are
// told of every change of that order's status.
type app struct {
	router *wsroute.Router
	store  *orderStore
	log    *slog.Logger
	now    func() time.Time
}

func newApp(log *slog.Logger) (*app, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, err := wsroute.New(&wsroute.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	a := &app{router: r, store: newOrderStore(), log: log, now: time.Now}
	r.HandleFunc(wsroute.RouteConnect, a.connect)
	r.HandleFunc(wsroute.RouteDefault, a.status)
	r.HandleFunc(wsroute.RouteDisconnect, a.disconnect)
	return a, nil
}

// handler serves the WebSocket endpoint at /ws and a short usage text at /.
func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ws", a.router)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Order status over WebSocket.\n\nConnect to ws://%s/ws?orderId=1001 and send any message for the current status;\nevery change is pushed to you as it happens.\n", r.Host)
	})
	return mux
}

func jsonResponse(status int, v any) *wsroute.Response {
	b, _ := json.Marshal(v)
	return &wsroute.Response{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}
}

// connect registers the connection's interest in its order. The handshake is
// refused with 400 without a valid orderId.
func (a *app) connect(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	id := req.QueryStringParameters["orderId"]
	if !orderIDRE.MatchString(id) {
		return jsonResponse(http.StatusBadRequest, map[string]string{
			"message": "the orderId query parameter is required: 1 to 64 letters, digits, '_' or '-'"}), nil
	}
	if err := a.store.watch(req.RequestContext.ConnectionID, id, a.now()); err != nil {
		return jsonResponse(http.StatusServiceUnavailable, map[string]string{"message": err.Error()}), nil
	}
	return &wsroute.Response{StatusCode: http.StatusOK}, nil
}

// status answers any message with the order's current status: a two-way
// route.
func (a *app) status(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	msg, ok := a.store.watched(req.RequestContext.ConnectionID)
	if !ok {
		return nil, fmt.Errorf("connection %s watches no order", req.RequestContext.ConnectionID)
	}
	return jsonResponse(http.StatusOK, msg), nil
}

func (a *app) disconnect(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	a.store.unwatch(req.RequestContext.ConnectionID)
	return nil, nil
}

// advance moves every order one status on and pushes each change to the
// order's watchers, through the router's ConnectionManager as a backend
// would through the @connections API. A watcher that is gone is skipped: its
// $disconnect unregisters it.
func (a *app) advance(ctx context.Context) {
	cm := a.router.Connections()
	for _, c := range a.store.advance(a.now()) {
		data, _ := json.Marshal(c.msg)
		for _, w := range c.watchers {
			if err := cm.PostToConnection(ctx, w, data); err != nil && !errors.Is(err, wsroute.ErrGone) {
				a.log.Warn("orders: push failed", "connectionId", w, "orderId", c.msg.OrderID, "err", err)
			}
		}
	}
}

// process advances the orders every interval until ctx is done.
func (a *app) process(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.advance(ctx)
		}
	}
}
