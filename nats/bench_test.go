package wsnats_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"github.com/wsroute/wsroute"
)

// BenchmarkPostToConnection posts 64-byte messages from node A to clients of
// A (local) and of B (cross-node, through one NATS server), from 1, 16 and
// 256 concurrent callers, and a bare NATS request and reply for comparison,
// and reports the latency of a call (p50, p99) and
// the posts per second. Every client reads all the time.
//
//	go test -run '^$' -bench PostToConnection -benchtime 20000x ./nats
func BenchmarkPostToConnection(b *testing.B) {
	ns := startNATS(b, "")
	// Queues long enough that the clients' reading never fails a post.
	big := &nodeConfig{options: &wsroute.Options{SendQueueSize: 1 << 20, SendQueueBytes: 1 << 30}}
	a := startNode(b, "A", ns.url(), big)
	bn := startNode(b, "B", ns.url(), big)
	waitSettled(b, a, bn)
	const clients = 16
	ids := map[string][]string{}
	for _, n := range []*node{a, bn} {
		for range clients {
			c := dial(b, n)
			ids[n.name] = append(ids[n.name], c.id)
			go func() { // drain until the test closes the socket
				for {
					if _, _, err := c.ws.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			b.Cleanup(func() { _ = c.ws.Close(websocket.StatusNormalClosure, "") })
		}
	}
	data := []byte(`{"type":"bench","data":"0123456789012345678901234567890123456"}`)

	// The baseline: a bare NATS request and reply between two connections
	// of the same server, with the reply sent at once.
	req, err := nats.Connect(ns.url())
	require.NoError(b, err)
	defer req.Close()
	resp, err := nats.Connect(ns.url())
	require.NoError(b, err)
	defer resp.Close()
	_, err = resp.Subscribe("bench.echo", func(m *nats.Msg) { _ = m.Respond([]byte{'o'}) })
	require.NoError(b, err)
	require.NoError(b, resp.Flush())
	bare := func(ctx context.Context, _ string, data []byte) error {
		_, err := req.RequestWithContext(ctx, "bench.echo", data)
		return err
	}

	for _, target := range []struct{ name, node string }{{"local", "A"}, {"cross-node", "B"}, {"bare-nats-request", ""}} {
		for _, callers := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("%s/callers=%d", target.name, callers), func(b *testing.B) {
				post := a.cm().PostToConnection
				if target.node == "" {
					post = bare
				}
				targets := ids["B"]
				if target.node == "A" {
					targets = ids["A"]
				}
				var next atomic.Int64
				var failed atomic.Int64
				lat := make([][]time.Duration, callers)
				var wg sync.WaitGroup
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for g := range callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx := context.Background()
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							t0 := time.Now()
							if err := post(ctx, targets[int(i)%len(targets)], data); err != nil {
								failed.Add(1)
							}
							lat[g] = append(lat[g], time.Since(t0))
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				all := slices.Concat(lat...)
				slices.Sort(all)
				b.ReportMetric(float64(all[len(all)/2])/1e3, "p50-µs")
				b.ReportMetric(float64(all[len(all)*99/100])/1e3, "p99-µs")
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "posts/s")
				if f := failed.Load(); f > 0 {
					b.Errorf("%d posts failed", f)
				}
			})
		}
	}
}

// BenchmarkHoldMemory measures what holding a connection costs: the
// Backplane's subscription and the NATS server's record of it, both in this
// process, in heap bytes per connection.
//
//	go test -run '^$' -bench HoldMemory -benchtime 20000x ./nats
func BenchmarkHoldMemory(b *testing.B) {
	ns := startNATS(b, "")
	n := startNode(b, "A", ns.url(), nil)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("%015d=", i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for _, id := range ids {
		n.bp.Hold(id)
	}
	if err := n.bp.Conn().Flush(); err != nil {
		b.Fatal(err)
	}
	// The server processes SUBs in order: once a request on the last
	// subject is answered, it has recorded them all.
	if _, err := n.bp.Conn().Request("wsroute.test.conn."+ids[len(ids)-1], []byte{'G'}, 10*time.Second); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "heap-B/conn")
	b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
	for _, id := range ids {
		n.bp.Release(id)
	}
}
