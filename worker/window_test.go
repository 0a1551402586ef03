package worker

import (
	"errors"
	"sync"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/tasks"
)

// fakeClock is the time a test sets; the worker reads it through NowFunc.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// lagos parses a wall time in Africa/Lagos (UTC+1 all year).
func lagos(t *testing.T, s string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation("Africa/Lagos")
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// setupWindow is setup with a fake clock at now and a window recheck cap.
func setupWindow(t *testing.T, now time.Time, recheck time.Duration) (*testBundle, *fakeClock) {
	t.Helper()
	b := setup(t)
	clk := &fakeClock{now: now}
	b.opts.NowFunc, b.opts.WindowRecheck = clk.Now, recheck
	b.mux = NewMux(Deps{Store: b.store, Provider: b.prov, Enqueuer: b.enq, Limiter: b.lim}, b.opts)
	return b, clk
}

// waitFor checks err is a window wait: not a failure (no retry used), due
// again in want.
func waitFor(t *testing.T, err error, want time.Duration) {
	t.Helper()
	var nf *notFailure
	if !errors.As(err, &nf) || IsFailure(err) {
		t.Fatalf("got %v, want a wait that is not a failure", err)
	}
	if got := RetryDelay(time.Second)(0, err, nil); got != want {
		t.Fatalf("due again in %s, want %s", got, want)
	}
}

var smsWindow = &campaigns.Window{Start: "08:00", End: "20:00", Timezone: "Africa/Lagos"}

// Recipients outside the send window are not sent, nor claimed, until it
// opens, and the wait uses no retry; once the clock reaches the opening,
// the task's next run sends every recipient exactly once. 2099-01-01 is a
// Thursday.
func TestWindowHoldsSendsUntilItOpens(t *testing.T) {
	t.Parallel()
	b, clk := setupWindow(t, lagos(t, "2099-01-01 21:00"), 0) // the default cap: 1h
	s := spec("night", campaigns.ChannelSMS)
	to := []string{"+2348030000001", "+2348030000002", "+2348030000003"}
	batch := b.campaign(t, s, to...)
	batch.Window = smsWindow

	// 21:00: the window opens in 11 h; the task comes back within the cap.
	waitFor(t, b.run(t, batch), time.Hour)
	// 07:30: in 30 minutes.
	clk.Set(lagos(t, "2099-01-02 07:30"))
	waitFor(t, b.run(t, batch), 30*time.Minute)

	for _, r := range to {
		if n := b.prov.times(r); n != 0 {
			t.Fatalf("%s sent %d times outside the window", r, n)
		}
	}
	entries, err := b.store.Ledger(b.ctx, s.ID, []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.State != 0 {
			t.Fatalf("row %d holds ledger state %q while waiting; want no claim", e.Row, e.State)
		}
	}
	if kids := b.children(t, tasks.TypeSMSSend); len(kids) != 0 {
		t.Fatalf("a waiting batch enqueued %d follow-ups", len(kids))
	}
	act, err := b.store.Activity(b.ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := lagos(t, "2099-01-02 08:00"); !act.NextOpening.Equal(want) {
		t.Fatalf("noted next opening %s, want %s", act.NextOpening, want)
	}
	if p := b.progress(t, s.ID); p.NextOpening == nil || !p.NextOpening.Equal(lagos(t, "2099-01-02 08:00")) {
		t.Fatalf("progress next_opening %v, want 08:00 Lagos", p.NextOpening)
	}

	// 08:00: the same task, run again, sends everyone once.
	clk.Set(lagos(t, "2099-01-02 08:00"))
	for range 2 {
		if err := b.run(t, batch); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range to {
		if n := b.prov.times(r); n != 1 {
			t.Errorf("%s sent %d times, want 1", r, n)
		}
	}
	if p := b.progress(t, s.ID); p.Sent != 3 || p.Pending != 0 || p.Failed != 0 {
		t.Fatalf("sent %d pending %d failed %d, want 3 0 0", p.Sent, p.Pending, p.Failed)
	}
}

// A batch whose recipients read the window in different zones sends those
// inside it now and hands the rest to one follow-up due at their earliest
// opening, under an id a re-run enqueues again (a no-op in asynq); each
// part is sent once, when its own window opens.
func TestWindowSplitsMixedZones(t *testing.T) {
	t.Parallel()
	// 21:00 in Lagos is 01:30 in Kolkata and 10:00 in Honolulu.
	b, clk := setupWindow(t, lagos(t, "2099-01-01 21:00"), 24*time.Hour)
	s := spec("zones", campaigns.ChannelSMS)
	batch := b.campaign(t, s, "+2348030000001", "+919812345678", "+18085550100")
	batch.Window = smsWindow
	batch.Items[1].TZ, batch.Items[2].TZ = "Asia/Kolkata", "Pacific/Honolulu"

	run := func(batch *campaigns.Batch) *campaigns.Batch {
		t.Helper()
		if err := b.run(t, batch); err != nil {
			t.Fatal(err)
		}
		kids := b.children(t, tasks.TypeSMSSend)
		if len(kids) != 1 {
			t.Fatalf("%d follow-ups, want 1", len(kids))
		}
		return kids[0]
	}
	sent := func() []int {
		return []int{b.prov.times("+2348030000001"), b.prov.times("+919812345678"), b.prov.times("+18085550100")}
	}

	later := run(batch)
	if diff := cmp.Diff([]int{0, 0, 1}, sent()); diff != "" {
		t.Fatalf("sent at 21:00 Lagos (-want +got):\n%s", diff)
	}
	if got := []int{later.Items[0].Row, later.Items[1].Row}; len(later.Items) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("follow-up items %+v, want rows 1 and 2", later.Items)
	}
	again := run(batch) // asynq re-runs a task: the same follow-up, nothing resent
	if tasks.BatchID(again) != tasks.BatchID(later) {
		t.Fatalf("re-run follow-up %s, want %s", tasks.BatchID(again), tasks.BatchID(later))
	}

	// 08:00 in Kolkata is 03:30 in Lagos: Kolkata's recipient goes, Lagos'
	// waits again.
	clk.Set(lagos(t, "2099-01-02 03:30"))
	last := run(later)
	if diff := cmp.Diff([]int{0, 1, 1}, sent()); diff != "" {
		t.Fatalf("sent at 08:00 Kolkata (-want +got):\n%s", diff)
	}
	if len(last.Items) != 1 || last.Items[0].Row != 1 {
		t.Fatalf("last follow-up items %+v, want row 1", last.Items)
	}

	clk.Set(lagos(t, "2099-01-02 08:00"))
	if err := b.run(t, last); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{1, 1, 1}, sent()); diff != "" {
		t.Fatalf("sent at 08:00 Lagos (-want +got):\n%s", diff)
	}
	if p := b.progress(t, s.ID); p.Sent != 3 || p.Pending != 0 {
		t.Fatalf("sent %d pending %d, want 3 0", p.Sent, p.Pending)
	}
}

// start_at holds a batch until it; a campaign whose deadline comes before
// the opening is skipped at the deadline, and one cancelled while waiting
// is settled at once instead of waiting for its window.
func TestStartAtExpiryAndCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	b, clk := setupWindow(t, lagos(t, "2099-01-01 09:00"), 24*time.Hour)
	s := spec("later", campaigns.ChannelSMS)
	batch := b.campaign(t, s, "+2348030000001")
	batch.StartAt = lagos(t, "2099-01-01 12:00").Unix()
	waitFor(t, b.run(t, batch), 3*time.Hour)
	clk.Set(lagos(t, "2099-01-01 12:00"))
	if err := b.run(t, batch); err != nil || b.prov.times("+2348030000001") != 1 {
		t.Fatalf("at start_at: err %v, sent %d times", err, b.prov.times("+2348030000001"))
	}

	// A deadline before the opening: back at the deadline, to be skipped.
	e := spec("expiring", campaigns.ChannelSMS)
	eb := b.campaign(t, e, "+2348030000003")
	eb.Window = smsWindow
	clk.Set(lagos(t, "2099-01-01 22:00"))
	eb.ExpiresAt = lagos(t, "2099-01-02 00:00").Unix()
	waitFor(t, b.run(t, eb), 2*time.Hour)
	clk.Set(lagos(t, "2099-01-02 00:00"))
	if err := b.run(t, eb); err != nil {
		t.Fatal(err)
	}
	if p := b.progress(t, e.ID); p.Skipped != 1 || b.prov.times("+2348030000003") != 0 {
		t.Fatalf("expired while waiting: skipped %d, sent %d; want 1 0", p.Skipped, b.prov.times("+2348030000003"))
	}

	c := spec("cancelled", campaigns.ChannelSMS)
	cb := b.campaign(t, c, "+2348030000002")
	cb.Window = smsWindow
	clk.Set(lagos(t, "2099-01-01 22:00"))
	waitFor(t, b.run(t, cb), 10*time.Hour)
	if _, err := b.store.Cancel(b.ctx, c.ID, "operator"); err != nil {
		t.Fatal(err)
	}
	if err := b.run(t, cb); err != nil {
		t.Fatal(err)
	}
	if p := b.progress(t, c.ID); p.Skipped != 1 || b.prov.times("+2348030000002") != 0 {
		t.Fatalf("skipped %d, sent %d; want 1 0", p.Skipped, b.prov.times("+2348030000002"))
	}
}
