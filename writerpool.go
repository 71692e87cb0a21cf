package wsroute

import (
	"runtime"
	"slices"
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
// watchdog timer, armed while the pool has work, detaches every worker that
// has spent more than poolStall on one member: the worker leaves the pool,
// finishes that member alone, as the member's own writer would, and exits;
// a new worker takes its place. So stuck sockets cost a goroutine each, as
// they would without the pool, and never stall it.
type writerPool struct {
	mu       sync.Mutex
	r        *Router
	jobs     []*[]*conn    // FIFO of members lists from connSlices; jobs[0] is being handed out
	pos      int           // next member of jobs[0]
	workers  []*poolWorker // attached workers
	watch    *time.Timer   // the watchdog, running while watching
	watching bool
}

// poolWorker is one worker's state, guarded by the pool's mu.
type poolWorker struct {
	busy     bool      // on a member
	since    time.Time // when it took that member
	detached bool
}

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
	p.r = r
	p.jobs = append(p.jobs, job)
	n := max(min(poolSize()-len(p.workers), len(*job)), 0)
	started := p.startLocked(n)
	if !p.watching {
		p.watching = true
		if p.watch == nil {
			p.watch = time.AfterFunc(poolStall, p.check)
		} else {
			p.watch.Reset(poolStall)
		}
	}
	p.mu.Unlock()
	for _, w := range started {
		go p.work(r, w)
	}
}

// startLocked makes n workers, counted in r.wg, for the caller to start.
func (p *writerPool) startLocked(n int) []*poolWorker {
	if n == 0 {
		return nil
	}
	ws := make([]*poolWorker, n)
	for i := range ws {
		ws[i] = &poolWorker{}
	}
	p.workers = append(p.workers, ws...)
	p.r.wg.Add(n)
	return ws
}

// nextLocked returns the next member to write to, or nil when there is none.
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

func (p *writerPool) work(r *Router, w *poolWorker) {
	// Each member's writeLoop count in r.wg is released when the worker
	// exits, all at once: one shared counter touched per member by the
	// poster and by every worker would cost more than the writes' own
	// bookkeeping. Shutdown waits for the worker all the same.
	owed := 0
	defer func() {
		r.wg.Add(-owed)
		r.wg.Done()
	}()
	for {
		p.mu.Lock()
		c := p.nextLocked()
		if c == nil {
			p.removeLocked(w)
			p.mu.Unlock()
			return
		}
		w.busy, w.since = true, time.Now()
		p.mu.Unlock()

		c.drain() // done with c when it returns: it cleared c.writing
		owed++

		p.mu.Lock()
		w.busy = false
		detached := w.detached
		p.mu.Unlock()
		if detached {
			return // the watchdog replaced this worker when it detached it
		}
	}
}

func (p *writerPool) removeLocked(w *poolWorker) {
	if i := slices.Index(p.workers, w); i >= 0 {
		p.workers = slices.Delete(p.workers, i, i+1)
	}
}

// check is the watchdog: it runs on a timer goroutine every poolStall while
// the pool has work, detaches the workers stuck on one member, and starts
// as many new ones while members wait.
func (p *writerPool) check() {
	p.mu.Lock()
	now := time.Now()
	n := 0
	for i := 0; i < len(p.workers); {
		w := p.workers[i]
		if w.busy && now.Sub(w.since) >= poolStall {
			w.detached = true
			p.workers = slices.Delete(p.workers, i, i+1)
			n++
			continue
		}
		i++
	}
	r := p.r
	var started []*poolWorker
	if len(p.jobs) > 0 {
		// The detached workers still hold their r.wg counts, so r.wg is
		// above zero.
		started = p.startLocked(n)
	}
	if len(p.workers) > 0 || len(p.jobs) > 0 {
		p.watch.Reset(poolStall)
	} else {
		p.watching = false
	}
	p.mu.Unlock()
	for _, w := range started {
		go p.work(r, w)
	}
}
