//go:build linux || darwin

package wsroute_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsroute/wsroute"
)

// BenchmarkFanOut posts one 101-byte frame to every one of n connections, as
// a group post and as a loop of PostToConnection, and waits until every
// client has read it. The clients are raw sockets in a child process, so that
// the allocations, and the heap, are the server's alone. It reports the heap
// per connection still in use after the posts (B-left/conn: retained by the
// router for good, such as goroutine descriptors) and the server's CPU time
// per post (server-CPU-µs/op), which a busy machine disturbs less than the
// wall time.
//
//	go test -run '^$' -bench FanOut -benchtime 20x .
func BenchmarkFanOut(b *testing.B) {
	raiseOpenFileLimit()
	for _, n := range []int{1000, 10000} {
		for _, mode := range []string{"group", "PostToConnection"} {
			b.Run(fmt.Sprintf("%s/%d", mode, n), func(b *testing.B) { benchFanOut(b, mode, n) })
		}
	}
}

func benchFanOut(b *testing.B, mode string, n int) {
	r, err := wsroute.New(&wsroute.Options{PingInterval: -1, CloseTimeout: 200 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var ids []string
	r.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		mu.Lock()
		ids = append(ids, req.RequestContext.ConnectionID)
		mu.Unlock()
		return nil, nil
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = r.Shutdown(ctx)
	}()

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), fanOutEnv+"="+srv.Listener.Addr().String()+" "+strconv.Itoa(n))
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); _ = child.Wait() }()
	done := bufio.NewReader(stdout)
	if line, err := done.ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("client process: %q %v", line, err)
	}
	mu.Lock()
	to := ids
	mu.Unlock()
	if len(to) != n {
		b.Fatalf("%d connections, want %d", len(to), n)
	}
	g := r.Groups()
	ctx := context.Background()
	for _, id := range to {
		if err := g.Join(ctx, "all", id); err != nil {
			b.Fatal(err)
		}
	}
	msg := []byte(`{"type":"roomMessage","room":"lobby","fromUserId":"alice","message":"hello, everyone in the lobby"}` + "..")
	post := func() {
		if mode == "group" {
			res, err := g.PostToGroup(ctx, "all", msg)
			if err != nil || res.Delivered != n {
				b.Fatalf("%+v %v", res, err)
			}
			return
		}
		for _, id := range to {
			if err := r.Connections().PostToConnection(ctx, id, msg); err != nil {
				b.Fatal(err)
			}
		}
	}
	wait := func() {
		if _, err := done.ReadByte(); err != nil {
			b.Fatal("client process: ", err)
		}
	}
	post() // warm up: pools, stacks
	wait()
	before := heapInUse()
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	for range b.N {
		post()
		wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu)/float64(time.Microsecond)/float64(b.N), "server-CPU-µs/op")
	b.ReportMetric(float64(int64(heapInUse())-int64(before))/float64(n), "B-left/conn")
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	time.Sleep(50 * time.Millisecond) // writers finishing their last frame exit
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// raiseOpenFileLimit raises the soft limit on open files to the hard limit.
func raiseOpenFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// fanOutClient opens n raw WebSocket connections to addr, prints "ready",
// then writes one byte to stdout each time every connection has read one
// more data frame. It returns when stdin closes.
func fanOutClient(spec string) int {
	raiseOpenFileLimit()
	addr, ns, _ := strings.Cut(spec, " ")
	n, _ := strconv.Atoi(ns)
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var failed atomic.Bool
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				failed.Store(true)
				return
			}
			conns[i] = nc
		}()
	}
	wg.Wait()
	if failed.Load() {
		return 1
	}
	var frames atomic.Int64
	signal := make(chan struct{}, 1024)
	readers := make([]*bufio.Reader, n)
	for i, nc := range conns {
		fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", addr)
		br := bufio.NewReaderSize(nc, 4096)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				fmt.Fprintln(os.Stderr, "handshake:", err)
				return 1
			}
			if line == "\r\n" {
				break
			}
		}
		readers[i] = br
	}
	for _, br := range readers {
		go func() {
			var hdr [8]byte
			for {
				if _, err := io.ReadFull(br, hdr[:2]); err != nil {
					return
				}
				size := uint64(hdr[1] & 0x7f)
				switch size {
				case 126:
					if _, err := io.ReadFull(br, hdr[:2]); err != nil {
						return
					}
					size = uint64(binary.BigEndian.Uint16(hdr[:2]))
				case 127:
					if _, err := io.ReadFull(br, hdr[:8]); err != nil {
						return
					}
					size = binary.BigEndian.Uint64(hdr[:8])
				}
				if _, err := br.Discard(int(size)); err != nil {
					return
				}
				if op := hdr[0] & 0x0f; op == 1 || op == 2 {
					if frames.Add(1)%int64(n) == 0 {
						signal <- struct{}{}
					}
				}
			}
		}()
	}
	fmt.Println("ready")
	go func() {
		for range signal {
			os.Stdout.Write([]byte{1})
		}
	}()
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, nc := range conns {
		nc.Close()
	}
	return 0
}
