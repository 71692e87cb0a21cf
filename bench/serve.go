package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tidwall/gjson"
)

// token is what every client sends as ?token=…; each server refuses an upgrade
// without it with 401, wsroute in its $connect handler, the peers in their
// upgrade handler.
const token = "bench"

// bearerToken authenticates the load generator to wsroute's management API.
const bearerToken = "bench-management-token"

// impl is one server under test. Each is written the way its library's
// documentation and examples suggest, with the read loop detached from the
// HTTP handler where the library allows it.
type impl interface {
	// ServeHTTP upgrades a request on /ws.
	http.Handler
	// broadcast sends msg to every open connection with the library's own
	// fan-out and returns how many connections it was given to.
	broadcast(msg []byte) int
	// count is the number of open connections.
	count() int
}

// knownImpls are the names newImpl knows.
var knownImpls = []string{"wsroute", "coder", "coder-naive", "gorilla", "melody"}

// newImpl returns the server named name, or an error for an unknown name.
func newImpl(name string) (impl, error) {
	switch name {
	case "wsroute":
		return newWsrouteServer()
	case "coder":
		return &coderServer{detached: true, conns: map[*coderConn]struct{}{}}, nil
	case "coder-naive":
		return &coderServer{conns: map[*coderConn]struct{}{}}, nil
	case "gorilla":
		return newGorillaServer(), nil
	case "melody":
		return newMelodyServer(), nil
	}
	return nil, fmt.Errorf("unknown implementation %q", name)
}

// isEcho is the peers' route selection: the frame's "action", looked up
// without validating the whole frame, as a hand-written server does.
func isEcho(msg []byte) bool { return gjson.GetBytes(msg, "action").Str == "echo" }

// authorized is the peers' equivalent of wsroute's $connect check.
func authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Query().Get("token") != token {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return false
	}
	return true
}

// serverStats is what a server process reports about itself on /stats.
type serverStats struct {
	CPUMicros  int64  `json:"cpuMicros"` // user + system CPU time of the process
	RSS        int64  `json:"rss"`       // resident set size, bytes
	HeapInuse  uint64 `json:"heapInuse"`
	StackInuse uint64 `json:"stackInuse"`
	Goroutines int    `json:"goroutines"`
	Conns      int    `json:"conns"`
}

// readStats reads the CPU time first, so that the GC that gc asks for is not
// counted in it.
func readStats(gc bool) serverStats {
	cpu := cpuMicros()
	if gc {
		for range 2 {
			runtime.GC()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return serverStats{
		CPUMicros:  cpu,
		RSS:        rss(),
		HeapInuse:  ms.HeapInuse,
		StackInuse: ms.StackInuse,
		Goroutines: runtime.NumGoroutine(),
	}
}

func cpuMicros() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano()/1e3 + ru.Stime.Nano()/1e3
}

// rss reads the resident set size from /proc/self/statm (Linux); 0 elsewhere.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// raiseFileLimit sets the soft open-file limit to the hard one: 10,000
// connections need 10,000 descriptors on each side.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return lim.Cur, nil
}

// serveMain is the server process: it serves one implementation on a
// loopback port, prints "listening <addr>" on stdout, and exits when its
// standard input closes (the load generator stops it so, and a dying load
// generator stops it too), on SIGTERM, or after -maxlife.
func serveMain(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	name := fs.String("serve", "", "the implementation to serve")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	maxlife := fs.Duration("maxlife", time.Hour, "exit after this long whatever happens")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log.SetPrefix("bench server " + *name + ": ")
	if _, err := raiseFileLimit(); err != nil {
		log.Print(err)
	}
	s, err := newImpl(*name)
	if err != nil {
		log.Print(err)
		return 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Print(err)
		return 1
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Print(err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Print(err)
			return 1
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	srv := &http.Server{Handler: controlMux(s), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("listening %s\n", ln.Addr())

	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		close(stop)
	}()
	sig := make(chan os.Signal, 1)
	notifyTerm(sig)
	select {
	case <-stop:
	case <-sig:
	case <-time.After(*maxlife):
		log.Print("maxlife reached")
	}
	return 0
}

// controlMux serves the implementation on /ws and the load generator's
// control endpoints beside it.
func controlMux(s impl) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ws", s)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		st := readStats(r.URL.Query().Get("gc") == "1")
		st.Conns = s.count()
		writeJSON(w, st)
	})
	mux.HandleFunc("POST /fanout", func(w http.ResponseWriter, r *http.Request) {
		msg, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]int{"sent": s.broadcast(msg)})
	})
	if ws, ok := s.(*wsrouteServer); ok {
		ws.control(mux)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// forEachParallel runs f on every item with GOMAXPROCS workers, the pool the
// peers' fan-out uses, and returns how many calls returned true.
func forEachParallel[T any](items []T, f func(T) bool) int {
	workers := min(runtime.GOMAXPROCS(0), len(items))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
		ok   int
	)
	const batch = 64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for {
				mu.Lock()
				lo := next
				next = min(next+batch, len(items))
				hi := next
				mu.Unlock()
				if lo >= hi {
					break
				}
				for _, it := range items[lo:hi] {
					if f(it) {
						n++
					}
				}
			}
			mu.Lock()
			ok += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	return ok
}
