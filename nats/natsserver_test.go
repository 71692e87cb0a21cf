package wsnats_test

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// natsServer is a real NATS server running in the test process, which can be
// stopped and started again on the same ports.
type natsServer struct {
	t    testing.TB
	opts server.Options
	mu   sync.Mutex
	s    *server.Server
}

// startNATS starts a NATS server on a free loopback port; routes, when not
// empty, make it join a cluster whose other servers listen there.
func startNATS(t testing.TB, clusterName string, routes ...string) *natsServer {
	t.Helper()
	ns := &natsServer{t: t, opts: server.Options{
		ServerName: fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano()),
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
	}}
	if clusterName != "" {
		ns.opts.Cluster = server.ClusterOpts{Name: clusterName, Host: "127.0.0.1", Port: server.RANDOM_PORT}
		for _, r := range routes {
			u, err := url.Parse(r)
			require.NoError(t, err)
			ns.opts.Routes = append(ns.opts.Routes, u)
		}
	}
	ns.start()
	// Later starts reuse the ports chosen now.
	ns.opts.Port = ns.s.Addr().(*net.TCPAddr).Port
	if clusterName != "" {
		ns.opts.Cluster.Port = ns.s.ClusterAddr().Port
	}
	t.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) start() {
	ns.t.Helper()
	opts := ns.opts
	s, err := server.NewServer(&opts)
	require.NoError(ns.t, err)
	s.Start()
	require.True(ns.t, s.ReadyForConnections(10*time.Second), "NATS server not ready")
	ns.mu.Lock()
	ns.s = s
	ns.mu.Unlock()
}

// stop shuts the server down, as a killed server: its clients see their
// sockets close.
func (ns *natsServer) stop() {
	ns.mu.Lock()
	s := ns.s
	ns.s = nil
	ns.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

func (ns *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", ns.opts.Port) }

func (ns *natsServer) routeURL() string {
	return fmt.Sprintf("nats-route://127.0.0.1:%d", ns.opts.Cluster.Port)
}

// startCluster starts three NATS servers routed to one another and waits
// until a message published on each reaches subscribers on the others.
func startCluster(t testing.TB) []*natsServer {
	t.Helper()
	s1 := startNATS(t, "wsroute-test")
	s2 := startNATS(t, "wsroute-test", s1.routeURL())
	s3 := startNATS(t, "wsroute-test", s1.routeURL(), s2.routeURL())
	servers := []*natsServer{s1, s2, s3}
	waitClusterFormed(t, servers)
	return servers
}

// waitClusterFormed waits until interest registered on each server is seen
// by the others.
func waitClusterFormed(t testing.TB, servers []*natsServer) {
	t.Helper()
	var conns []*nats.Conn
	for _, s := range servers {
		nc, err := nats.Connect(s.url())
		require.NoError(t, err)
		defer nc.Close()
		conns = append(conns, nc)
	}
	for i, sub := range conns {
		subj := fmt.Sprintf("cluster.ready.%d", i)
		_, err := sub.Subscribe(subj, func(m *nats.Msg) { _ = m.Respond(nil) })
		require.NoError(t, err)
		require.NoError(t, sub.Flush())
		for j, pub := range conns {
			if i == j {
				continue
			}
			require.Eventually(t, func() bool {
				_, err := pub.Request(subj, nil, time.Second)
				return err == nil
			}, 20*time.Second, 20*time.Millisecond, "server %d does not reach server %d", j, i)
		}
	}
}

// freezer is a TCP proxy between a node and its NATS server that can stop
// forwarding, leaving both sockets open: the node looks alive to the
// server but answers nothing, as a stuck process does.
type freezer struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	frozen  bool
	thaw    chan struct{}
	conns   []net.Conn
	wg      sync.WaitGroup
	stopped bool
}

func newFreezer(t testing.TB, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &freezer{ln: ln, target: target, thaw: make(chan struct{})}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *freezer) url() string { return "nats://" + f.ln.Addr().String() }

func (f *freezer) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		if f.stopped {
			f.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		f.conns = append(f.conns, c, u)
		f.mu.Unlock()
		f.wg.Add(2)
		go f.pipe(u, c)
		go f.pipe(c, u)
	}
}

func (f *freezer) pipe(dst, src net.Conn) {
	defer f.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f.wait()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// wait blocks while the proxy is frozen.
func (f *freezer) wait() {
	f.mu.Lock()
	frozen, thaw := f.frozen, f.thaw
	f.mu.Unlock()
	if frozen {
		<-thaw
	}
}

func (f *freezer) freeze() {
	f.mu.Lock()
	f.frozen = true
	f.mu.Unlock()
}

func (f *freezer) unfreeze() {
	f.mu.Lock()
	if f.frozen {
		f.frozen = false
		close(f.thaw)
		f.thaw = make(chan struct{})
	}
	f.mu.Unlock()
}

func (f *freezer) close() {
	f.unfreeze()
	f.mu.Lock()
	f.stopped = true
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.ln.Close()
	f.wg.Wait()
}
