package wsroute

import "time"

// SetThrottleClock makes t's buckets read now instead of time.Now.
func SetThrottleClock(t *Throttle, now func() time.Time) { t.now = now }

// SetManagementThrottleClock makes t's buckets read now instead of time.Now.
func SetManagementThrottleClock(t *ManagementThrottle, now func() time.Time) { t.now = now }

// ThrottleKeys reports how many buckets r's throttle keeps per connection,
// per principal and per source IP.
func ThrottleKeys(r *Router) (conns, principals, ips int) {
	size := func(t *bucketTable) int {
		if t == nil {
			return 0
		}
		return t.len()
	}
	return size(r.throttle.conn), size(r.throttle.principal), size(r.throttle.addr)
}
