package wsroute

import (
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// rateLimit is a token bucket in its exact form, GCRA (the generic cell rate
// algorithm): the bucket holds burst tokens and refills at rate tokens per
// second; its whole state is one number, the theoretical arrival time (tat,
// unix ns) of the next request, which is how a bucket is stored below. A
// bucket that has never been used (tat 0), or whose tat is not after now, is
// full. The usage plans, the quotas and the throttles all count with it.
type rateLimit struct {
	interval  int64 // ns per token
	tolerance int64 // (burst-1)·interval: how far tat may run ahead of now
}

// Bounds that keep tat from overflowing for any rate and burst: a token at
// least every year, a bucket at most 36 years of tokens deep (so at a token
// a year, a burst of at most 37).
const (
	maxInterval  = int64(365 * 24 * time.Hour)
	maxTolerance = int64(1) << 60
)

func newRateLimit(rate float64, burst int) rateLimit {
	interval := maxInterval
	if iv := math.Ceil(float64(time.Second) / rate); iv < float64(maxInterval) {
		interval = int64(iv)
	}
	tolerance := maxTolerance
	if b := int64(max(burst, 1) - 1); b < maxTolerance/interval {
		tolerance = b * interval
	}
	return rateLimit{interval: interval, tolerance: tolerance}
}

// take reports whether a request at now finds a token in the bucket whose
// state is tat, and the state after it takes the token. A refused request
// leaves the bucket as it was.
func (l rateLimit) take(tat, now int64) (int64, bool) {
	t := max(tat, now)
	if now < t-l.tolerance {
		return tat, false
	}
	return t + l.interval, true
}

// tokenBucket is one rateLimit bucket, safe for concurrent use.
type tokenBucket struct {
	mu    sync.Mutex
	limit rateLimit
	tat   int64
	now   func() time.Time
}

func newTokenBucket(rate float64, burst int, now func() time.Time) *tokenBucket {
	return &tokenBucket{limit: newRateLimit(rate, burst), now: now}
}

func (b *tokenBucket) take() bool { return b.takeAt(b.now().UnixNano()) }

// takeAt takes a token at now (unix ns).
func (b *tokenBucket) takeAt(now int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	tat, ok := b.limit.take(b.tat, now)
	b.tat = tat
	return ok
}

// bucketTable holds a bucket per key (a connection ID, a principal, a source
// IP, a caller) in bounded memory: at most capacity keys, in 16 shards, each
// with its own lock, so that keys on different shards never contend.
//
// A full bucket carries no information (a key seen for the first time gets
// a full one), so when a shard is at its share of capacity the keys it drops
// first are those whose buckets have refilled; when none among the sampled
// has, it drops the one closest to full, which lets that key burst again
// sooner than it should. Under capacity keys active at once (each one having
// sent within burst/rate seconds) every limit is exact.
type bucketTable struct {
	limit    rateLimit
	perShard int
	seed     maphash.Seed
	shards   [tableShards]tableShard
}

const (
	tableShards   = 16
	tableEvictLen = 32 // entries examined to find one to drop
)

type tableShard struct {
	mu sync.Mutex
	m  map[string]int64 // key → tat
}

func newBucketTable(s ThrottleSettings, capacity int) *bucketTable {
	t := &bucketTable{limit: newRateLimit(s.RateLimit, s.BurstLimit), perShard: max(1, capacity/tableShards), seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[string]int64)
	}
	return t
}

// take takes a token from key's bucket at now (unix ns).
func (t *bucketTable) take(key string, now int64) bool {
	s := &t.shards[maphash.String(t.seed, key)%tableShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	old, known := s.m[key]
	tat, ok := t.limit.take(old, now)
	if !ok {
		return false
	}
	if !known && len(s.m) >= t.perShard {
		s.evictLocked(now)
	}
	s.m[key] = tat
	return true
}

// evictLocked drops the full buckets among the first entries of the map's
// (random) iteration order, or the fullest of them when none is full.
func (s *tableShard) evictLocked(now int64) {
	n, dropped := 0, false
	oldest, oldestTAT := "", int64(math.MaxInt64)
	for k, tat := range s.m {
		if tat <= now {
			delete(s.m, k)
			dropped = true
		} else if tat < oldestTAT {
			oldest, oldestTAT = k, tat
		}
		if n++; n == tableEvictLen {
			break
		}
	}
	if !dropped {
		delete(s.m, oldest)
	}
}

// len is the number of keys held.
func (t *bucketTable) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
