package storage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// sent creates a campaign of two recipients and has both accepted, leaving
// their delivery reports awaited (SMS).
func (b *testBundle) sent(t *testing.T, spec campaigns.Spec) {
	t.Helper()
	rows := b.create(t, spec, 2)
	if _, err := b.store.Claim(b.ctx, spec.ID, "A", rows, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", accept(rows)); err != nil {
		t.Fatal(err)
	}
}

// report records delivery reports, then returns the campaign's state.
func (b *testBundle) report(t *testing.T, id string, outs ...campaigns.Outcome) campaigns.State {
	t.Helper()
	if _, err := b.store.Record(b.ctx, id, storage.ModeDLR, "", outs); err != nil {
		t.Fatal(err)
	}
	return b.state(t, id)
}

func (b *testBundle) state(t *testing.T, id string) campaigns.State {
	t.Helper()
	p, err := b.store.Progress(b.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return p.State
}

// A sent campaign can be paused (nothing to stop, but an operator's pause
// holds while delivery reports arrive) and resumed back to sent; a report
// that completes it while paused completes it.
func TestSentPauseResume(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("sent-pause")
	b.sent(t, spec)
	if st, err := b.store.Pause(b.ctx, spec.ID, "look"); err != nil || st != campaigns.StatePaused {
		t.Fatalf("pause a sent campaign: %s %v", st, err)
	}
	// One report while paused: still paused, not back to sent.
	if st := b.report(t, spec.ID, campaigns.Outcome{Row: 1, State: storage.LedgerDelivered, Value: "id1"}); st != campaigns.StatePaused {
		t.Fatalf("after a report while paused: %s, want paused", st)
	}
	st, err := b.store.Resume(b.ctx, spec.ID, "done looking")
	if err != nil || st != campaigns.StateSent {
		t.Fatalf("resume a paused sent campaign: %s %v, want sent", st, err)
	}
	if p, _ := b.store.Progress(b.ctx, spec.ID); p.Reason != "done looking" {
		t.Fatalf("resume's reason %q not recorded", p.Reason)
	}
	if _, err := b.store.Resume(b.ctx, spec.ID, ""); !errors.Is(err, storage.ErrTransition) {
		t.Fatalf("resume a sent campaign: %v, want ErrTransition", err)
	}
	if _, err := b.store.Pause(b.ctx, spec.ID, "again"); err != nil {
		t.Fatal(err)
	}
	if st := b.report(t, spec.ID, campaigns.Outcome{Row: 2, State: storage.LedgerUndelivered, Value: "id2"}); st != campaigns.StateCompleted {
		t.Fatalf("last report while paused: %s, want completed", st)
	}
}

// Cancelling a sent campaign makes it final at once: it awaits its delivery
// reports no more, and a report read later counts without reopening it.
func TestSentCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("sent-cancel")
	b.sent(t, spec)
	st, err := b.store.Cancel(b.ctx, spec.ID, "stop waiting")
	if err != nil || st != campaigns.StateCancelled {
		t.Fatalf("cancel a sent campaign: %s %v", st, err)
	}
	b.report(t, spec.ID, campaigns.Outcome{Row: 1, State: storage.LedgerDelivered, Value: "id1"},
		campaigns.Outcome{Row: 2, State: storage.LedgerDelivered, Value: "id2"})
	p, _ := b.store.Progress(b.ctx, spec.ID)
	if p.State != campaigns.StateCancelled || p.Delivered != 2 || !p.Final() {
		t.Fatalf("after late reports: %s delivered %d, want cancelled and 2", p.State, p.Delivered)
	}
}

// A campaign that awaits no statuses (dlr 0: an email or WhatsApp campaign
// created before they were tracked) goes from running straight to
// completed, never sent; SendingOver holds for sent, completed and
// cancelled only.
func TestNoReportsSkipsSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("email")
	spec.Channel = campaigns.ChannelEmail
	if _, err := b.store.Create(b.ctx, spec); err != nil {
		t.Fatal(err)
	}
	b.rdb.HSet(b.ctx, "fanout:{email}", "dlr", "0")
	b.sent(t, spec)
	p, _ := b.store.Progress(b.ctx, spec.ID)
	if p.State != campaigns.StateCompleted || p.SentAt == nil || !p.SendingOver() {
		t.Fatalf("email campaign: %s sent_at %v, want completed with sent_at", p.State, p.SentAt)
	}
	for st, want := range map[campaigns.State]bool{campaigns.StateDispatching: false, campaigns.StateRunning: false, campaigns.StatePaused: false,
		campaigns.StateSent: true, campaigns.StateCompleted: true, campaigns.StateCancelled: true} {
		if got := (campaigns.Progress{State: st}).SendingOver(); got != want {
			t.Errorf("SendingOver(%s) = %v, want %v", st, got, want)
		}
	}
}

// list is ordered by creation: dispatching a campaign again (Create of the
// same spec) does not move it to the top.
func TestListKeepsCreationOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, id := range []string{"first", "second"} {
		if _, err := b.store.Create(b.ctx, smsSpec(id)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	if _, err := b.store.Create(b.ctx, smsSpec("first")); err != nil {
		t.Fatal(err)
	}
	ids, err := b.store.List(b.ctx, 0)
	if err != nil || len(ids) != 2 || ids[0] != "second" || ids[1] != "first" {
		t.Fatalf("list after a re-dispatch: %v %v, want [second first]", ids, err)
	}
}

// The ETA never promises more than the rate limit lets through, and falls
// back to the limit when no rate is known yet.
func TestETABoundedByLimit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name              string
		pending           int64
		rate, limit, want float64
	}{
		{"under the limit", 100, 10, 50, 10},
		{"over the limit", 100, 100, 50, 2},
		{"no limit", 100, 20, 0, 5},
		{"no rate yet", 100, 0, 50, 2},
		{"nothing known", 100, 0, 0, 0},
	} {
		if got := storage.ETA(c.pending, c.rate, c.limit); got != c.want {
			t.Errorf("%s: ETA = %v, want %v", c.name, got, c.want)
		}
	}
	if got := (campaigns.Rate{PerSecond: 10, PerMinute: 300}).Steady(); got != 5 {
		t.Errorf("Steady of 10/s and 300/min = %v, want 5", got)
	}
}

// The rate of status leaves paused time out, the pause under way included,
// and its ETA is bounded by the campaign's rate limit.
func TestRateLeavesPausesOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("paused-rate")
	spec.Rate = &campaigns.Rate{PerSecond: 2}
	rows := b.create(t, spec, 100)
	if _, err := b.store.Claim(b.ctx, spec.ID, "A", rows[:40], time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", accept(rows[:40])); err != nil {
		t.Fatal(err)
	}
	// Sending started 30 s ago, and the campaign spent 10 s paused before
	// a pause that started 10 s ago and goes on: 10 s of sending.
	now := time.Now().UnixMilli()
	key := "fanout:{" + spec.ID + "}"
	b.rdb.HSet(b.ctx, key, "started_at", now-30000, "paused_ms", 10000)
	if _, err := b.store.Pause(b.ctx, spec.ID, "look"); err != nil {
		t.Fatal(err)
	}
	b.rdb.HSet(b.ctx, key, "paused_at", now-10000)
	p, err := b.store.Progress(b.ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Rate < 3.6 || p.Rate > 4.4 {
		t.Fatalf("rate %.2f/s, want 40 in 10 s of sending: 4/s", p.Rate)
	}
	if p.ETA == nil || *p.ETA != 30 {
		t.Fatalf("ETA %v, want 60 pending at the 2/s limit: 30 s", p.ETA)
	}
}
