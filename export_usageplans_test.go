package wsroute

import "time"

// SetUsagePlansClock gives the external tests control of a store's clock.
func SetUsagePlansClock(u *UsagePlans, now func() time.Time) { u.now = now }
