package wsroute

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// connTable holds the open connections by ID, in shards so that connections
// arriving and leaving on many goroutines rarely contend for one lock.
type connTable struct {
	closed atomic.Bool // set by Shutdown before it sweeps the shards
	shards [64]connShard

	n atomic.Int64 // connections in the shards
}

type connShard struct {
	mu sync.RWMutex
	m  map[string]*conn
}

func (t *connTable) init() {
	for i := range t.shards {
		t.shards[i].m = make(map[string]*conn)
	}
}

func (t *connTable) shard(id string) *connShard {
	var h uint32 = 2166136261 // FNV-1a: IDs from outside may be anything
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return &t.shards[h%uint32(len(t.shards))]
}

// add registers c. It reports false, and registers c all the same so that its
// close runs the usual way, when Shutdown has begun.
func (t *connTable) add(c *conn) bool {
	s := t.shard(c.id)
	s.mu.Lock()
	if _, dup := s.m[c.id]; !dup {
		t.n.Add(1)
	}
	s.m[c.id] = c
	closed := t.closed.Load()
	s.mu.Unlock()
	return !closed
}

func (t *connTable) remove(c *conn) {
	s := t.shard(c.id)
	s.mu.Lock()
	if s.m[c.id] == c {
		delete(s.m, c.id)
		t.n.Add(-1)
	}
	s.mu.Unlock()
}

func (t *connTable) get(id string) *conn {
	s := t.shard(id)
	s.mu.RLock()
	c := s.m[id]
	s.mu.RUnlock()
	return c
}

// each calls f for every connection, outside the shard locks.
func (t *connTable) each(f func(*conn)) {
	t.eachUntil(func(c *conn) bool { f(c); return true })
}

// Read buffers are pooled: an idle connection holds none.
var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuffer = 64 << 10

func getBuffer() *bytes.Buffer { return bufferPool.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bufferPool.Put(b)
}
