package wsroute

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Errors of [UsagePlans].
var (
	ErrNoSuchPlan   = errors.New("wsroute: no such usage plan")
	ErrNoSuchAPIKey = errors.New("wsroute: no such API key")
	ErrAPIKeyExists = errors.New("wsroute: an API key with this ID or value exists")
	ErrPlanInUse    = errors.New("wsroute: the usage plan has API keys")
)

// UsagePlans holds API keys and the usage plans that meter them, as API
// Gateway's usage plans do for a WebSocket API stage (see [Options.UsagePlans]).
// Each key belongs to one plan; a plan throttles each of its keys (a token
// bucket: RateLimit requests per second on average, BurstLimit at once) and
// gives each a quota of requests per day, week or month. Keys and plans can
// be added, changed and revoked while the router serves.
//
// What counts as a request: the upgrade request ($connect) and every message
// the client sends, each counted once against the key the connection opened
// with, by every connection that shares the key. $disconnect and frames the
// server sends do not count. The README's "API keys and usage plans" section
// compares this with API Gateway point by point.
//
// Memory: each key costs a fixed amount (its hash, ID, plan ID and about 64
// bytes of counters); keys that are not registered cost nothing, whatever
// clients send. The zero value is ready to use; all methods are safe for
// concurrent use.
type UsagePlans struct {
	mu     sync.RWMutex
	plans  map[string]*UsagePlan
	byHash map[[sha256.Size]byte]*apiKeyState
	byID   map[string]*apiKeyState
	now    func() time.Time // nil: time.Now; tests set it
}

// UsagePlan is a plan's limits. A nil Throttle or Quota means no limit of
// that kind.
type UsagePlan struct {
	ID       string
	Throttle *ThrottleSettings
	Quota    *QuotaSettings
}

// ThrottleSettings are a token bucket per key: the bucket holds BurstLimit
// tokens and refills at RateLimit tokens per second; a request takes one, and
// a request that finds the bucket empty is refused with 429 "Too Many
// Requests". A key starts with a full bucket.
type ThrottleSettings struct {
	RateLimit  float64 // requests per second, > 0
	BurstLimit int     // >= 1
}

// QuotaSettings are the number of requests a key may make in each period.
// Periods are in UTC, as API Gateway's: a DAY starts at midnight; a WEEK on
// the day Offset days after Sunday (0 = Sunday, 1 = Monday, …, 6); a MONTH
// Offset days after the first of the month (0 to 27). Past the limit a
// request is refused with 429 "Limit Exceeded" until the next period begins.
type QuotaSettings struct {
	Limit  int64 // > 0
	Period QuotaPeriod
	Offset int
}

// QuotaPeriod is the period of a quota.
type QuotaPeriod string

// The periods of a quota.
const (
	QuotaDay   QuotaPeriod = "DAY"
	QuotaWeek  QuotaPeriod = "WEEK"
	QuotaMonth QuotaPeriod = "MONTH"
)

// APIKey is a key clients send in the x-api-key header of the upgrade
// request. ID appears as requestContext.identity.apiKeyId and Value as
// identity.apiKey on every event of a connection that used the key.
type APIKey struct {
	ID     string
	Value  string // 20 to 128 characters, as API Gateway requires
	PlanID string
}

// KeyUsage is a key's use of its plan's quota in the current period.
type KeyUsage struct {
	Used, Remaining        int64 // Remaining is -1 without a quota
	PeriodStart, PeriodEnd time.Time
}

// apiKeyState is a registered key and its counters.
type apiKeyState struct {
	id, value, plan string

	mu          sync.Mutex
	revoked     bool
	tat         int64 // throttle: theoretical arrival time, unix ns (GCRA)
	used        int64 // quota: requests counted in the period starting at periodStart
	periodStart int64 // unix ns
}

// meterResult is why a request was refused, or meterOK.
type meterResult int

const (
	meterOK meterResult = iota
	meterThrottled
	meterQuota
	meterRevoked
)

// PutPlan adds a plan, or changes the limits of the plan with its ID. Keys of
// a changed plan keep their counters.
func (u *UsagePlans) PutPlan(p UsagePlan) error {
	if p.ID == "" {
		return errors.New("wsroute: usage plan without an ID")
	}
	if t := p.Throttle; t != nil && !t.valid() {
		return fmt.Errorf("wsroute: usage plan %q: throttle needs RateLimit > 0 and BurstLimit >= 1", p.ID)
	}
	if q := p.Quota; q != nil {
		maxOffset := map[QuotaPeriod]int{QuotaDay: 0, QuotaWeek: 6, QuotaMonth: 27}
		m, ok := maxOffset[q.Period]
		if !ok || q.Limit < 1 || q.Offset < 0 || q.Offset > m {
			return fmt.Errorf("wsroute: usage plan %q: quota needs Limit >= 1, Period DAY, WEEK or MONTH, "+
				"and Offset 0 (DAY), 0-6 (WEEK) or 0-27 (MONTH)", p.ID)
		}
	}
	cp := p
	if p.Throttle != nil {
		t := *p.Throttle
		cp.Throttle = &t
	}
	if p.Quota != nil {
		q := *p.Quota
		cp.Quota = &q
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.plans == nil {
		u.plans = make(map[string]*UsagePlan)
	}
	u.plans[p.ID] = &cp
	return nil
}

// DeletePlan removes a plan that has no keys; it returns ErrPlanInUse when
// keys still belong to it.
func (u *UsagePlans) DeletePlan(id string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.plans[id]; !ok {
		return ErrNoSuchPlan
	}
	for _, k := range u.byID {
		if k.plan == id {
			return ErrPlanInUse
		}
	}
	delete(u.plans, id)
	return nil
}

// AddKey registers a key in an existing plan.
func (u *UsagePlans) AddKey(k APIKey) error {
	if k.ID == "" || len(k.Value) < 20 || len(k.Value) > 128 {
		return errors.New("wsroute: API key needs an ID and a value of 20 to 128 characters")
	}
	h := sha256.Sum256([]byte(k.Value))
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.plans[k.PlanID]; !ok {
		return fmt.Errorf("%w: %q", ErrNoSuchPlan, k.PlanID)
	}
	if u.byID[k.ID] != nil || u.byHash[h] != nil {
		return ErrAPIKeyExists
	}
	if u.byID == nil {
		u.byID = make(map[string]*apiKeyState)
		u.byHash = make(map[[sha256.Size]byte]*apiKeyState)
	}
	s := &apiKeyState{id: k.ID, value: k.Value, plan: k.PlanID}
	u.byID[k.ID] = s
	u.byHash[h] = s
	return nil
}

// RevokeKey removes a key. New connections with it are refused with 403,
// and every message of a connection that opened with it gets the Forbidden
// frame instead of reaching a route; such a connection stays open, as it
// does when API Gateway refuses a message.
func (u *UsagePlans) RevokeKey(id string) error {
	u.mu.Lock()
	s := u.byID[id]
	if s != nil {
		delete(u.byID, id)
		delete(u.byHash, sha256.Sum256([]byte(s.value)))
	}
	u.mu.Unlock()
	if s == nil {
		return ErrNoSuchAPIKey
	}
	s.mu.Lock()
	s.revoked = true
	s.mu.Unlock()
	return nil
}

// Usage reports a key's use of its quota in the current period.
func (u *UsagePlans) Usage(keyID string) (KeyUsage, error) {
	u.mu.RLock()
	s := u.byID[keyID]
	var p *UsagePlan
	if s != nil {
		p = u.plans[s.plan]
	}
	u.mu.RUnlock()
	if s == nil {
		return KeyUsage{}, ErrNoSuchAPIKey
	}
	if p.Quota == nil {
		return KeyUsage{Remaining: -1}, nil
	}
	now := u.clock()
	start, end := quotaPeriod(p.Quota, now)
	s.mu.Lock()
	used := s.used
	if s.periodStart != start.UnixNano() {
		used = 0
	}
	s.mu.Unlock()
	return KeyUsage{Used: used, Remaining: max(p.Quota.Limit-used, 0), PeriodStart: start, PeriodEnd: end}, nil
}

func (u *UsagePlans) clock() time.Time {
	if u.now != nil {
		return u.now()
	}
	return time.Now()
}

// lookup finds the key a client presented; nil when it is not registered.
func (u *UsagePlans) lookup(value string) *apiKeyState {
	h := sha256.Sum256([]byte(value))
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.byHash[h]
}

// meter counts one request of key k against its plan.
func (u *UsagePlans) meter(k *apiKeyState) meterResult {
	u.mu.RLock()
	p := u.plans[k.plan]
	var th ThrottleSettings
	var q QuotaSettings
	if p != nil && p.Throttle != nil {
		th = *p.Throttle
	}
	if p != nil && p.Quota != nil {
		q = *p.Quota
	}
	u.mu.RUnlock()
	now := u.clock()
	t := now.UnixNano()

	k.mu.Lock()
	defer k.mu.Unlock()
	if k.revoked || p == nil {
		return meterRevoked
	}
	var newTAT int64
	if th.RateLimit > 0 {
		ok := false
		if newTAT, ok = newRateLimit(th.RateLimit, th.BurstLimit).take(k.tat, t); !ok {
			return meterThrottled
		}
	}
	if q.Limit > 0 {
		start, _ := quotaPeriod(&q, now)
		if s := start.UnixNano(); s != k.periodStart {
			k.periodStart, k.used = s, 0
		}
		if k.used >= q.Limit {
			return meterQuota
		}
		k.used++
	}
	if th.RateLimit > 0 {
		k.tat = newTAT
	}
	return meterOK
}

// quotaPeriod returns the UTC period of q that contains now.
func quotaPeriod(q *QuotaSettings, now time.Time) (start, end time.Time) {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	switch q.Period {
	case QuotaWeek:
		back := (int(day.Weekday()) - q.Offset + 7) % 7
		start = day.AddDate(0, 0, -back)
		return start, start.AddDate(0, 0, 7)
	case QuotaMonth:
		start = time.Date(now.Year(), now.Month(), 1+q.Offset, 0, 0, 0, 0, time.UTC)
		if now.Before(start) {
			start = time.Date(now.Year(), now.Month()-1, 1+q.Offset, 0, 0, 0, 0, time.UTC)
		}
		return start, time.Date(start.Year(), start.Month()+1, 1+q.Offset, 0, 0, 0, 0, time.UTC)
	default:
		return day, day.AddDate(0, 0, 1)
	}
}
