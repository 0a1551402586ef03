package storage_test

import (
	"testing"
	"time"

	"github.com/fanoutdev/fanout/storage"
)

// A customer's window is open for 24 hours after their last message to that
// business number, across the UTC day boundary; older, out-of-order and
// other businesses' messages open nothing; every key expires.
func TestSessionWindows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Today at 10:00 UTC: keys expire at absolute times (a day after their
	// day), so a fixed date would find yesterday's key already gone.
	now := time.Now().UTC().Truncate(24 * time.Hour).Add(10 * time.Hour)
	const biz = "+234 900 000 0001"
	ins := []storage.Inbound{
		{Business: biz, Customer: "+2348030000001", At: now.Add(-time.Hour)},
		{Business: biz, Customer: "2348030000001", At: now.Add(-5 * time.Hour)},   // older, out of order
		{Business: biz, Customer: "+2348030000002", At: now.Add(-23 * time.Hour)}, // yesterday (UTC)
		{Business: biz, Customer: "+2348030000003", At: now.Add(-25 * time.Hour)}, // closed
		{Business: "+2349000000009", Customer: "+2348030000004", At: now.Add(-time.Minute)},
	}
	n, err := b.store.RecordInbound(b.ctx, now, ins...)
	if err != nil || n != 4 {
		t.Fatalf("recorded %d, %v; want 4 (the 25-hour-old one opens nothing)", n, err)
	}
	got, err := b.store.LastInbound(b.ctx, "2349000000001", []string{"+2348030000001", "+2348030000002", "+2348030000003", "+2348030000004", "+2348030000005"}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{now.Add(-time.Hour), now.Add(-23 * time.Hour), {}, {}, {}}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("customer %d: last inbound %v, want %v", i+1, got[i], want[i])
		}
	}
	// An hour and a second later the yesterday's message has closed.
	later, _ := b.store.LastInbound(b.ctx, biz, []string{"+2348030000001", "+2348030000002"}, now.Add(time.Hour+time.Second))
	if later[0].IsZero() || !later[1].IsZero() {
		t.Errorf("an hour later: %v; want the first open, the second closed", later)
	}
	keys, _ := b.rdb.Keys(b.ctx, "fanout:wa:in:*").Result()
	if len(keys) != 3 {
		t.Errorf("keys %v, want 3 (two days of one business, one of another)", keys)
	}
	for _, k := range keys {
		if ttl, _ := b.rdb.PTTL(b.ctx, k).Result(); ttl <= 0 && !b.srv.Real {
			continue // miniredis' clock is not ours
		} else if ttl <= 0 {
			t.Errorf("%s has no expiry", k)
		}
	}
}
