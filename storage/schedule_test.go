package storage_test

import (
	"testing"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
)

// Progress shows when a waiting campaign sends next: the earlier of its
// start_at (or window) and the openings workers noted, never one already
// past, and nothing once nothing is left to send. NoteOpening keeps the
// earliest opening still to come.
func TestNextOpening(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := time.Now().Truncate(time.Second)
	start := now.Add(3 * time.Hour)
	spec := smsSpec("sched")
	spec.Schedule = &campaigns.Schedule{StartAt: &start}
	b.create(t, spec, 10)
	next := func() *time.Time {
		t.Helper()
		p, err := b.store.Progress(b.ctx, spec.ID)
		if err != nil {
			t.Fatal(err)
		}
		return p.NextOpening
	}
	if got := next(); got == nil || !got.Equal(start) {
		t.Fatalf("next_opening %v, want start_at %s", got, start)
	}
	for _, tc := range []struct {
		name     string
		at, want time.Time
	}{
		{"earlier than start_at", now.Add(time.Hour), now.Add(time.Hour)},
		{"a later one keeps the earlier", now.Add(2 * time.Hour), now.Add(time.Hour)},
		{"an earlier one wins", now.Add(30 * time.Minute), now.Add(30 * time.Minute)},
	} {
		if err := b.store.NoteOpening(b.ctx, spec.ID, tc.at, now); err != nil {
			t.Fatal(err)
		}
		if got := next(); got == nil || !got.Equal(tc.want) {
			t.Fatalf("%s: next_opening %v, want %s", tc.name, got, tc.want)
		}
	}
	// Past openings are not shown; start_at still is.
	if err := b.store.NoteOpening(b.ctx, spec.ID, now.Add(-time.Minute), now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := next(); got == nil || !got.Equal(start) {
		t.Fatalf("after the noted opening passed: %v, want start_at %s", got, start)
	}
	if _, err := b.store.Cancel(b.ctx, spec.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != nil {
		t.Fatalf("cancelled campaign shows next_opening %s", got)
	}
	if err := b.store.NoteOpening(b.ctx, "missing", now, now); err == nil {
		t.Fatal("noted an opening for a campaign that does not exist")
	}
}
