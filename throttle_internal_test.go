package wsroute

import (
	"fmt"
	"hash/maphash"
	"math"
	"testing"
	"time"
)

// TestBucketTableBound feeds 100,000 distinct keys (principals, IPs) to a
// table of 1,024 and checks its size after each; keys fewer than the bound
// and active keep exact buckets; full buckets are dropped before others.
func TestBucketTableBound(t *testing.T) {
	const capacity = 1024
	tbl := newBucketTable(ThrottleSettings{RateLimit: 1, BurstLimit: 1}, capacity)
	now := time.Unix(1_700_000_000, 0).UnixNano()
	for i := range 100_000 {
		if !tbl.take(fmt.Sprintf("principal-%d", i), now) {
			t.Fatalf("key %d, never seen, was refused", i)
		}
		if n := tbl.len(); n > capacity {
			t.Fatalf("after %d keys the table holds %d, over %d", i+1, n, capacity)
		}
	}
	if n := tbl.len(); n < capacity/2 {
		t.Fatalf("the table holds %d keys of %d", n, capacity)
	}

	// Under the bound, every bucket is exact.
	tbl = newBucketTable(ThrottleSettings{RateLimit: 1, BurstLimit: 1}, capacity)
	for i := range 200 {
		tbl.take(fmt.Sprint("ip-", i), now)
	}
	for i := range 200 {
		if tbl.take(fmt.Sprint("ip-", i), now) {
			t.Fatalf("key %d got a second token at once", i)
		}
	}

	// A table at its bound drops refilled buckets before empty ones: with
	// 2 keys per shard, an empty bucket survives a new key when the key it
	// shares its shard with has refilled.
	tbl = newBucketTable(ThrottleSettings{RateLimit: 1, BurstLimit: 1}, tableShards*2)
	for i := range 10_000 {
		// Old keys, refilled a second later.
		tbl.take(fmt.Sprint("old-", i), now-int64(2*time.Second))
	}
	tbl.take("hot", now)
	shard := func(k string) uint64 { return maphash.String(tbl.seed, k) % tableShards }
	for i := 0; ; i++ { // a new key on hot's shard, which is full of refilled buckets and hot
		if i == 100_000 {
			t.Fatal("no key on hot's shard")
		}
		if k := fmt.Sprint("new-", i); shard(k) == shard("hot") {
			tbl.take(k, now)
			break
		}
	}
	if tbl.take("hot", now) {
		t.Fatal("an empty bucket was dropped while refilled ones were there")
	}
}

// TestRateLimitBoundary checks the GCRA bucket itself to the nanosecond.
func TestRateLimitBoundary(t *testing.T) {
	l := newRateLimit(4, 2) // a token every 250 ms, 2 at once
	var tat int64
	now := int64(1_000_000_000_000)
	take := func(at int64) bool {
		var ok bool
		tat, ok = l.take(tat, at)
		return ok
	}
	for i, want := range []bool{true, true, false} {
		if got := take(now); got != want {
			t.Fatalf("request %d at once: %v, want %v", i+1, got, want)
		}
	}
	if take(now + 250e6 - 1) {
		t.Fatal("a token 1 ns early")
	}
	if !take(now+250e6) || take(now+250e6) {
		t.Fatal("one token after 250 ms")
	}
}

// BenchmarkThrottle measures what a message costs each limit: one bucket
// (Router, Routes) and a table lookup (Connection, Principal, per IP), from
// parallel goroutines as connections call it.
func BenchmarkThrottle(b *testing.B) {
	s := ThrottleSettings{RateLimit: 1e9, BurstLimit: 1e6}
	b.Run("bucket", func(b *testing.B) {
		tb := newTokenBucket(s.RateLimit, s.BurstLimit, time.Now)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tb.take()
			}
		})
	})
	b.Run("table", func(b *testing.B) {
		tbl := newBucketTable(s, defaultThrottleKeys)
		keys := make([]string, 10_000)
		for i := range keys {
			keys[i] = fmt.Sprintf("conn-%d", i)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				tbl.take(keys[i%len(keys)], time.Now().UnixNano())
				i++
			}
		})
	})
}

// TestRateLimitExtremes: tiny rates and huge bursts neither overflow nor
// refuse what they should allow.
func TestRateLimitExtremes(t *testing.T) {
	now := time.Unix(1_700_000_000, 0).UnixNano()
	l := newRateLimit(1000, math.MaxInt) // the bucket is capped at 36 years of tokens
	var tat int64
	for i := range 1000 {
		var ok bool
		if tat, ok = l.take(tat, now); !ok {
			t.Fatalf("request %d of a huge burst refused", i+1)
		}
	}
	l = newRateLimit(1e-12, math.MaxInt) // tat stays far from overflowing
	tat = 0
	for range 36 {
		var ok bool
		if tat, ok = l.take(tat, now); !ok || tat < now {
			t.Fatalf("tat %d", tat)
		}
	}
	l = newRateLimit(1e-12, 1) // a token a year at most
	tat = 0
	tat, _ = l.take(tat, now)
	if _, ok := l.take(tat, now+int64(364*24*time.Hour)); ok {
		t.Fatal("a second token within the year")
	}
	if _, ok := l.take(tat, now+int64(365*24*time.Hour)); !ok {
		t.Fatal("no token after a year")
	}
	l = newRateLimit(math.MaxFloat64, 5)
	if l.interval < 1 {
		t.Fatalf("interval %d", l.interval)
	}
}
