package wsroute

import (
	"runtime"
	"sync"
	"time"
)

// writerPool writes the frames of group posts with a few goroutines shared by
// all of a router's connections, instead of a writer goroutine per member.
//
// A post hands the pool a job: the members that had no writer, for each of
// which the post set c.writing and counted a writeLoop in r.wg. A worker
// takes the members one by one and runs each one's writeLoop, which writes
// what is queued, performs a close the router requested, and clears
// c.writing. Workers exist only while there is work: the pool starts up to
// about GOMAXPROCS of them and each exits when it finds nothing to do.
//
// A member whose socket accepts no data would hold its worker in a write. A
// worker busy with one member for longer than poolStall is detached: it
// leaves the pool, finishes that member alone, as the member's own writer
// would, and exits; a new worker takes its place. So stuck sockets cost a
// goroutine each, as they would without the pool, and never stall it.
type writerPool struct {
	mu      sync.Mutex
	jobs    []*[]*conn // FIFO; jobs[0] is being handed out
	pos     int        // next member of jobs[0]
	workers int        // attached workers
}

// A job is the members of one post that the pool writes to: a list from
// connSlices, which returns there once the pool has handed them all out.

// poolStall is how long a worker may spend on one member before the pool
// replaces it.
const poolStall = 10 * time.Millisecond

func poolSize() int { return max(2, runtime.GOMAXPROCS(0)) }

// submit queues job and starts workers for it. Every member of job holds a
// count in r.wg, so r.wg cannot reach zero before the workers started here
// have added theirs.
func (p *writerPool) submit(r *Router, job *[]*conn) {
	if len(*job) == 0 {
		putConnSlice(job)
		return
	}
	p.mu.Lock()
	p.jobs = append(p.jobs, job)
	n := min(poolSize()-p.workers, len(*job))
	p.workers += max(n, 0)
	r.wg.Add(max(n, 0))
	p.mu.Unlock()
	for range n {
		go p.work(r)
	}
}

// next returns the next member to write to, or nil when there is none; then
// the worker has left the pool.
func (p *writerPool) nextLocked() *conn {
	for len(p.jobs) > 0 {
		j := p.jobs[0]
		if p.pos < len(*j) {
			c := (*j)[p.pos]
			p.pos++
			return c
		}
		// Shift rather than reslice, so that the array is reused: there
		// are rarely more than a few jobs.
		n := copy(p.jobs, p.jobs[1:])
		p.jobs[n] = nil
		p.jobs = p.jobs[:n]
		p.pos = 0
		putConnSlice(j)
	}
	return nil
}

// poolWorker is one worker's state, shared with its stall timer.
type poolWorker struct {
	p        *writerPool
	r        *Router
	busy     bool // on a member; guarded by p.mu
	since    time.Time
	detached bool
	timer    *time.Timer
}

func (p *writerPool) work(r *Router) {
	defer r.wg.Done()
	w := &poolWorker{p: p, r: r}
	w.timer = time.AfterFunc(time.Hour, w.stalled)
	w.timer.Stop()
	defer w.timer.Stop()
	for {
		p.mu.Lock()
		c := p.nextLocked()
		if c == nil {
			p.workers--
			p.mu.Unlock()
			return
		}
		w.busy, w.since = true, time.Now()
		p.mu.Unlock()
		w.timer.Reset(poolStall)

		c.writeLoop() // done with c when it returns: it cleared c.writing and its r.wg count
		c.clearSlot()

		w.timer.Stop()
		p.mu.Lock()
		w.busy = false
		detached := w.detached
		p.mu.Unlock()
		if detached {
			return // the pool replaced this worker when it detached it
		}
	}
}

// stalled runs on the timer's goroutine when a worker has spent poolStall on
// one member: the worker leaves the pool, and another takes its place if
// there is work waiting.
func (w *poolWorker) stalled() {
	p := w.p
	p.mu.Lock()
	if !w.busy || w.detached || time.Since(w.since) < poolStall {
		p.mu.Unlock()
		return
	}
	w.detached = true
	p.workers--
	start := len(p.jobs) > 0
	if start {
		p.workers++
		w.r.wg.Add(1) // w holds its count until it exits, so r.wg is above zero
	}
	p.mu.Unlock()
	if start {
		go p.work(w.r)
	}
}
