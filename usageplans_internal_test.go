package wsroute

import (
	"fmt"
	"testing"
	"time"
)

func TestQuotaPeriods(t *testing.T) {
	d := func(y int, m time.Month, day, h int) time.Time { return time.Date(y, m, day, h, 0, 0, 0, time.UTC) }
	tests := []struct {
		q          QuotaSettings
		now        time.Time
		start, end time.Time
	}{
		{QuotaSettings{Period: QuotaDay}, d(2026, 3, 10, 12), d(2026, 3, 10, 0), d(2026, 3, 11, 0)},
		{QuotaSettings{Period: QuotaDay}, d(2026, 3, 10, 0), d(2026, 3, 10, 0), d(2026, 3, 11, 0)},
		// 2026-03-10 is a Tuesday.
		{QuotaSettings{Period: QuotaWeek}, d(2026, 3, 10, 12), d(2026, 3, 8, 0), d(2026, 3, 15, 0)},
		{QuotaSettings{Period: QuotaWeek, Offset: 1}, d(2026, 3, 10, 12), d(2026, 3, 9, 0), d(2026, 3, 16, 0)},
		{QuotaSettings{Period: QuotaWeek, Offset: 2}, d(2026, 3, 10, 0), d(2026, 3, 10, 0), d(2026, 3, 17, 0)},
		{QuotaSettings{Period: QuotaWeek, Offset: 3}, d(2026, 3, 10, 23), d(2026, 3, 4, 0), d(2026, 3, 11, 0)},
		{QuotaSettings{Period: QuotaMonth}, d(2026, 3, 10, 12), d(2026, 3, 1, 0), d(2026, 4, 1, 0)},
		{QuotaSettings{Period: QuotaMonth}, d(2026, 12, 31, 23), d(2026, 12, 1, 0), d(2027, 1, 1, 0)},
		{QuotaSettings{Period: QuotaMonth, Offset: 14}, d(2026, 3, 10, 12), d(2026, 2, 15, 0), d(2026, 3, 15, 0)},
		{QuotaSettings{Period: QuotaMonth, Offset: 14}, d(2026, 3, 15, 0), d(2026, 3, 15, 0), d(2026, 4, 15, 0)},
		{QuotaSettings{Period: QuotaMonth, Offset: 27}, d(2026, 1, 5, 0), d(2025, 12, 28, 0), d(2026, 1, 28, 0)},
		// A time in another zone is placed in UTC's period.
		{QuotaSettings{Period: QuotaDay}, time.Date(2026, 3, 10, 23, 0, 0, 0, time.FixedZone("X", -3*3600)), d(2026, 3, 11, 0), d(2026, 3, 12, 0)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s+%d@%s", tt.q.Period, tt.q.Offset, tt.now.Format(time.RFC3339)), func(t *testing.T) {
			start, end := quotaPeriod(&tt.q, tt.now)
			if !start.Equal(tt.start) || !end.Equal(tt.end) {
				t.Errorf("got [%s, %s), want [%s, %s)", start, end, tt.start, tt.end)
			}
		})
	}
}

// TestQuotaWeekRollsOver meters a weekly quota across its boundary.
func TestQuotaWeekRollsOver(t *testing.T) {
	now := time.Date(2026, 3, 15, 23, 59, 59, 0, time.UTC) // Sunday 23:59:59
	u := &UsagePlans{now: func() time.Time { return now }}
	if err := u.PutPlan(UsagePlan{ID: "p", Quota: &QuotaSettings{Limit: 2, Period: QuotaWeek, Offset: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := u.AddKey(APIKey{ID: "k", Value: "0123456789abcdefghij", PlanID: "p"}); err != nil {
		t.Fatal(err)
	}
	k := u.lookup("0123456789abcdefghij")
	got := []meterResult{u.meter(k), u.meter(k), u.meter(k)}
	now = now.Add(time.Second) // Monday 00:00:00 starts the week
	got = append(got, u.meter(k), u.meter(k), u.meter(k))
	want := []meterResult{meterOK, meterOK, meterQuota, meterOK, meterOK, meterQuota}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestUnknownKeysCostNothing: whatever keys clients present, the store holds
// only the keys registered.
func TestUnknownKeysCostNothing(t *testing.T) {
	u := &UsagePlans{}
	if err := u.PutPlan(UsagePlan{ID: "p"}); err != nil {
		t.Fatal(err)
	}
	if err := u.AddKey(APIKey{ID: "k", Value: "0123456789abcdefghij", PlanID: "p"}); err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		if u.lookup(fmt.Sprintf("guess-%020d", i)) != nil {
			t.Fatal("an unknown key was found")
		}
	}
	if len(u.byHash) != 1 || len(u.byID) != 1 {
		t.Errorf("the store holds %d/%d keys, want 1", len(u.byHash), len(u.byID))
	}
}
