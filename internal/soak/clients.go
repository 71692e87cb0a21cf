package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// client is one WebSocket client: a reader goroutine sorts what arrives
// into posts (d … and g …) and replies.
type client struct {
	name    string
	id      string
	ws      *websocket.Conn
	nc      net.Conn
	replies chan string
	ended   chan struct{} // closed when the reader stops
	err     error         // why it stopped; read after ended

	mu    sync.Mutex
	posts []string
}

func (r *run) dial(ctx context.Context, name string, w way) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var nc net.Conn
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		nc = c
		return c, err
	}}
	defer tr.CloseIdleConnections()
	path := "/ws"
	switch {
	case w.idle:
		path = "/idle"
	case w.plain:
		path = "/plain"
	}
	ws, resp, err := websocket.Dial(ctx, r.base+path+"?name="+name, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", name, err)
	}
	r.dialled.Add(1)
	ws.SetReadLimit(1 << 20)
	c := &client{name: name, ws: ws, nc: nc, replies: make(chan string, 64), ended: make(chan struct{})}
	go c.read()
	r.mu.Lock()
	known := r.ids[name] // $connect ran before the handshake completed
	r.mu.Unlock()
	if w.idle {
		// No round trip on the idle router: its idle timeout is short.
		c.id = known
		return c, nil
	}
	if err := c.send(ctx, `{"action":"whoami"}`); err != nil {
		return c, err
	}
	reply, err := c.reply(wait)
	if err != nil {
		return c, err
	}
	id, ok := strings.CutPrefix(reply, "id ")
	if !ok {
		return c, fmt.Errorf("%s: whoami answered %q", name, reply)
	}
	c.id = id
	if known != id {
		return c, fmt.Errorf("%s: whoami says %s, $connect saw %s", name, id, known)
	}
	return c, nil
}

func (c *client) read() {
	defer close(c.ended)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		s := string(b)
		if strings.HasPrefix(s, "d ") || strings.HasPrefix(s, "g ") {
			c.mu.Lock()
			c.posts = append(c.posts, s)
			c.mu.Unlock()
			continue
		}
		select {
		case c.replies <- s:
		default:
			c.err = fmt.Errorf("%s: too many unread replies", c.name)
			c.ws.CloseNow()
			return
		}
	}
}

func (c *client) send(ctx context.Context, msg string) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, []byte(msg))
}

func (c *client) reply(within time.Duration) (string, error) {
	select {
	case s := <-c.replies:
		return s, nil
	case <-c.ended:
		return "", fmt.Errorf("%s: connection ended waiting for a reply: %w", c.name, c.err)
	case <-time.After(within):
		return "", fmt.Errorf("%s: no reply within %v", c.name, within)
	}
}

// call sends msg and checks the reply.
func (c *client) call(ctx context.Context, msg, want string) error {
	if err := c.send(ctx, msg); err != nil {
		return err
	}
	got, err := c.reply(wait)
	if err != nil {
		return err
	}
	if got != want && !(strings.HasSuffix(want, "*") && strings.HasPrefix(got, want[:len(want)-1])) {
		return fmt.Errorf("%s: sent %.60q, got %.120q, want %.120q", c.name, msg, got, want)
	}
	return nil
}

// closeCode waits for the reader to stop and returns the close frame the
// server sent.
func (c *client) closeCode() (websocket.CloseError, error) {
	select {
	case <-c.ended:
	case <-time.After(wait):
		c.ws.CloseNow()
		return websocket.CloseError{}, fmt.Errorf("%s: not closed within %v", c.name, wait)
	}
	var ce websocket.CloseError
	if !errors.As(c.err, &ce) {
		return ce, fmt.Errorf("%s: want a close frame, got %v", c.name, c.err)
	}
	return ce, nil
}

// exercise runs the stable connections, the external posters and the
// churning connections, and waits until every post has landed.
func (r *run) exercise(ctx context.Context) {
	cfg := r.cfg
	rnd := rand.New(rand.NewPCG(cfg.Seed, 0))

	// Stable connections: open throughout, members of stableGroup.
	stable := make([]*client, cfg.Stable)
	for i := range stable {
		c, err := r.dial(ctx, fmt.Sprint("stable-", i), way{})
		if err != nil {
			r.problem("%v", err)
			if c != nil {
				c.ws.CloseNow()
			}
			stable = stable[:i]
			break
		}
		stable[i] = c
		r.mu.Lock()
		r.stable[c.id] = true
		r.expect[c.id] = way{name: "Shutdown", code: 1001, reason: "Going away"}
		r.mu.Unlock()
		if err := c.call(ctx, `{"action":"join","group":"`+stableGroup+`"}`, "join "+stableGroup); err != nil {
			r.problem("%v", err)
		}
	}
	stableIDs := make([]string, len(stable))
	for i, c := range stable {
		stableIDs[i] = c.id
	}
	r.logf("soak: %d stable connections open", len(stable))
	target := func(rnd *rand.Rand) string {
		if rnd.IntN(4) == 0 {
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.live) > 0 {
				return r.live[rnd.IntN(len(r.live))]
			}
		}
		return stableIDs[rnd.IntN(len(stableIDs))]
	}
	groupName := func(rnd *rand.Rand) string {
		if rnd.IntN(3) == 0 {
			return stableGroup
		}
		return "g" + strconv.Itoa(rnd.IntN(churnGroups))
	}

	deadline := time.Now().Add(cfg.Duration)
	stop := make(chan struct{})
	var bg sync.WaitGroup
	// Stable connections send to each other, to churners and to groups.
	for i, c := range stable {
		bg.Add(1)
		go func() {
			defer bg.Done()
			rnd := rand.New(rand.NewPCG(cfg.Seed, uint64(1000+i)))
			// Each sends every 50 ms or more, less often the more there are,
			// so that the group posts to all of them stay within the machine.
			period := max(50*time.Millisecond, time.Duration(cfg.Stable)*2*time.Millisecond)
			tick := time.NewTicker(period + time.Duration(rnd.Int64N(int64(period))))
			defer tick.Stop()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					// Handlers run in order: when "done" comes back, every
					// post of this sender has been made.
					if err := c.call(ctx, `{"action":"done"}`, "done"); err != nil {
						r.problem("%v", err)
					}
					return
				case <-tick.C:
				}
				msg := fmt.Sprintf(`{"action":"send","to":%q,"seq":%d}`, target(rnd), seq)
				if seq%3 == 0 {
					msg = fmt.Sprintf(`{"action":"gsend","group":%q,"seq":%d}`, groupName(rnd), seq)
				}
				if err := c.send(ctx, msg); err != nil {
					r.problem("stable %s: %v", c.name, err)
					return
				}
			}
		}()
	}
	// Posters outside the router.
	for k := range 2 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			rnd := rand.New(rand.NewPCG(cfg.Seed, uint64(k+1)))
			from := "external-" + strconv.Itoa(k)
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				if seq%4 == 0 {
					g := groupName(rnd)
					res, err := r.main.Groups().PostToGroup(ctx, g, []byte("g "+g+" "+from+" "+strconv.Itoa(seq)))
					if err != nil {
						r.problem("%s: PostToGroup: %v", from, err)
						return
					}
					r.recordGroup(from, g, seq, res)
					continue
				}
				to := target(rnd)
				err := r.main.Connections().PostToConnection(ctx, to, []byte("d "+from+" "+strconv.Itoa(seq)))
				r.recordDirect(from, to, seq, err)
			}
		}()
	}

	// Churning connections, paced over the duration.
	start := time.Now()
	gap := cfg.Duration / time.Duration(cfg.Conns)
	hold := time.Duration(cfg.Parallel) * gap / 2 // each lives about this long
	sem := make(chan struct{}, cfg.Parallel)
	var churn sync.WaitGroup
	for i := range cfg.Conns {
		if d := time.Until(start.Add(time.Duration(i) * gap)); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		churn.Add(1)
		seed := rnd.Uint64()
		go func() {
			defer func() { <-sem; churn.Done() }()
			r.churn(ctx, i, ways[i%len(ways)], hold, rand.New(rand.NewPCG(seed, uint64(i))), target, groupName)
		}()
		if i%500 == 499 {
			r.logf("soak: %d connections started in %v", i+1, time.Since(start).Round(time.Millisecond))
		}
	}
	churn.Wait()
	if d := time.Until(deadline); d > 0 {
		time.Sleep(min(d, wait))
	}
	close(stop)
	bg.Wait()
	r.logf("soak: churn done in %v", time.Since(start).Round(time.Millisecond))

	// Every churning connection has ended: its $disconnect runs after its
	// last handler, so once all have run no post is under way.
	waitFor := time.Now().Add(2 * wait)
	for time.Now().Before(waitFor) {
		r.mu.Lock()
		n := 0
		for id := range r.accepted {
			if !r.stable[id] && len(r.disconnects[id]) > 0 {
				n++
			}
		}
		all := n == len(r.accepted)-len(r.stable)
		r.mu.Unlock()
		if all {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Stable connections receive everything posted to them.
	r.mu.Lock()
	want := make(map[string]int, len(stable))
	for _, c := range stable {
		for _, seqs := range r.direct[c.id] {
			want[c.id] += len(seqs)
		}
	}
	for _, seqs := range r.group {
		for _, c := range stable {
			want[c.id] += len(seqs)
		}
	}
	r.mu.Unlock()
	for _, c := range stable {
		for t := time.Now().Add(2 * wait); time.Now().Before(t); time.Sleep(20 * time.Millisecond) {
			c.mu.Lock()
			n := len(c.posts)
			c.mu.Unlock()
			if n >= want[c.id] {
				break
			}
		}
	}
	time.Sleep(100 * time.Millisecond) // anything extra would arrive now
	r.checkStable(stable)
	r.stableClients = stable
}

// churn runs one churning connection: it connects, talks, joins and leaves
// groups, sends a malformed input when its way says so, and ends its way.
func (r *run) churn(ctx context.Context, i int, w way, hold time.Duration, rnd *rand.Rand,
	target func(*rand.Rand) string, groupName func(*rand.Rand) string) {
	name := "c" + strconv.Itoa(i)
	c, err := r.dial(ctx, name, w)
	if err != nil {
		r.problem("%v", err)
		if c != nil {
			c.ws.CloseNow()
		}
		return
	}
	defer c.ws.CloseNow()
	r.mu.Lock()
	r.expect[c.id] = w
	r.endings[w.name]++
	if !w.idle && !w.plain {
		r.live = append(r.live, c.id)
	}
	r.mu.Unlock()
	fail := func(err error) { r.problem("%s (%s): %v", name, w.name, err) }

	if !w.idle && !w.plain {
		joined := map[string]bool{}
		for seq := range talkMessages {
			time.Sleep(time.Duration(rnd.Int64N(int64(hold/talkMessages) + 1)))
			var err error
			switch rnd.IntN(4) {
			case 0:
				g := "g" + strconv.Itoa(rnd.IntN(churnGroups))
				action := "join"
				if joined[g] {
					action = "leave"
				}
				joined[g] = !joined[g]
				err = c.call(ctx, `{"action":"`+action+`","group":"`+g+`"}`, action+" "+g)
			case 1:
				err = c.send(ctx, fmt.Sprintf(`{"action":"gsend","group":%q,"seq":%d}`, groupName(rnd), seq))
			default:
				err = c.send(ctx, fmt.Sprintf(`{"action":"send","to":%q,"seq":%d}`, target(rnd), seq))
			}
			if err != nil {
				fail(err)
				return
			}
		}
	}

	// A malformed input, answered as DESIGN.md §10 says.
	var in, want string
	switch w.input {
	case "deep JSON": // not JSON: $default
		in = strings.Repeat("[", deepNesting) + strings.Repeat("]", deepNesting)
		want = "default " + strconv.Itoa(len(in))
	case "non-JSON": // $default
		in = "hello, this is not JSON {"
		want = "default " + strconv.Itoa(len(in))
	case "panic": // the Internal server error frame; the connection stays open
		in = `{"action":"panic"}`
		want = `{"message": "Internal server error", "connectionId":"` + c.id + `", "requestId":"*`
	case "unknown route": // no $default on the plain router: the Forbidden frame
		in = `{"action":"nope"}`
		want = `{"message": "Forbidden", "connectionId":"` + c.id + `", "requestId":"*`
	}
	if in != "" {
		if err := c.call(ctx, in, want); err != nil {
			fail(err)
			return
		}
		if w.input == "panic" { // still open
			if err := c.call(ctx, `{"action":"done"}`, "done"); err != nil {
				fail(err)
				return
			}
		}
		r.mu.Lock()
		r.malformed[w.input]++
		r.mu.Unlock()
	}

	r.mu.Lock()
	if k := slicesIndex(r.live, c.id); k >= 0 {
		r.live[k] = r.live[len(r.live)-1]
		r.live = r.live[:len(r.live)-1]
	}
	r.mu.Unlock()

	write := func(typ websocket.MessageType, data string) error {
		return c.ws.Write(ctx, typ, []byte(data))
	}
	serverCloses := true
	switch w.name {
	case "close frame":
		err, serverCloses = c.ws.Close(4000, "bye"), false
	case "close frame 1000", "deep JSON, then close frame", "non-JSON, then close frame", "handler panic, then close frame",
		"unknown route, then close frame":
		err, serverCloses = c.ws.Close(websocket.StatusNormalClosure, "done"), false
	case "close frame without status":
		err, serverCloses = c.ws.Close(websocket.StatusNoStatusRcvd, ""), false
	case "TCP reset":
		serverCloses = false
		if err = c.nc.(*net.TCPConn).SetLinger(0); err == nil {
			err = c.nc.Close()
		}
	case "TCP close without close frame":
		err, serverCloses = c.ws.CloseNow(), false
	case "DeleteConnection":
		err = r.main.Connections().DeleteConnection(ctx, c.id)
	case "idle timeout":
	case "oversize frame":
		// The server may refuse the frame, and close, before it has read
		// all of it: a failed write is no failure here.
		_ = write(websocket.MessageText, strings.Repeat("x", maxMessage+1))
	case "binary frame":
		err = write(websocket.MessageBinary, "\x00\x01")
	case "invalid UTF-8":
		err = write(websocket.MessageText, `{"action":"send","x":"`+"\xff\xfe"+`"}`)
	default:
		err = fmt.Errorf("no such way %q", w.name)
	}
	if err != nil {
		fail(err)
	}
	if serverCloses {
		ce, err := c.closeCode()
		switch {
		case err != nil && w.name == "oversize frame" && !errors.As(c.err, new(websocket.CloseError)):
			// Reset while it was still writing: the close frame is lost
			// with the connection; $disconnect's code is checked all the same.
		case err != nil:
			fail(err)
		case int(ce.Code) != w.code:
			fail(fmt.Errorf("the server closed with %d %q, want %d", ce.Code, ce.Reason, w.code))
		}
	} else {
		c.ws.CloseNow()
		select {
		case <-c.ended:
		case <-time.After(wait):
			fail(errors.New("the reader did not stop"))
		}
	}
	// What it received arrived once and in order per sender.
	c.mu.Lock()
	posts := c.posts
	c.mu.Unlock()
	if err := checkOrder(posts); err != nil {
		fail(err)
	}
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// parsePost splits "d from seq" and "g group from seq" into a stream key
// (kind, group, sender) and the sequence number.
func parsePost(p string) (key, from string, seq int, err error) {
	f := strings.Fields(p)
	switch {
	case len(f) == 3 && f[0] == "d":
		from = f[1]
		key = "d " + from
	case len(f) == 4 && f[0] == "g":
		from = f[2]
		key = "g " + f[1] + " " + from
	default:
		return "", "", 0, fmt.Errorf("malformed post %q", p)
	}
	seq, err = strconv.Atoi(f[len(f)-1])
	return key, from, seq, err
}

// checkOrder checks that each sender's posts arrived in order, none twice.
func checkOrder(posts []string) error {
	last := map[string]int{}
	for _, p := range posts {
		key, _, seq, err := parsePost(p)
		if err != nil {
			return err
		}
		if prev, ok := last[key]; ok && seq <= prev {
			return fmt.Errorf("%s: seq %d after %d", key, seq, prev)
		}
		last[key] = seq
	}
	return nil
}
