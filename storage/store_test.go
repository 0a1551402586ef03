package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/storage"
)

type testBundle struct {
	ctx   context.Context
	rdb   *redis.Client
	store *storage.Store
	srv   *redistest.Server
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	return &testBundle{ctx: context.Background(), rdb: rdb, store: storage.New(rdb), srv: srv}
}

func smsSpec(id string) campaigns.Spec {
	return campaigns.Spec{ID: id, Name: "t", Channel: campaigns.ChannelSMS, ChannelID: "ch", Message: "hi", Recipients: "r.csv"}
}

// create makes a campaign with n recipients in batches of 10 and finishes its dispatch.
func (b *testBundle) create(t *testing.T, spec campaigns.Spec, n int) []int {
	t.Helper()
	if _, err := b.store.Create(b.ctx, spec); err != nil {
		t.Fatal(err)
	}
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i + 1
	}
	for seq := 0; seq*10 < n; seq++ {
		end := min(seq*10+10, n)
		if _, err := b.store.AddBatch(b.ctx, spec.ID, seq, end-seq*10, end); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.store.FinishDispatch(b.ctx, spec.ID, storage.DispatchCounts{Rows: n}); err != nil {
		t.Fatal(err)
	}
	return rows
}

func accept(rows []int) []campaigns.Outcome {
	out := make([]campaigns.Outcome, len(rows))
	for i, r := range rows {
		out[i] = campaigns.Outcome{Row: r, State: storage.LedgerAccepted, Value: "id" + strconv.Itoa(r)}
	}
	return out
}

// A recipient is claimed once: another attempt sees it in flight, the same
// attempt calling again (a retried command) still owns it, and after
// acceptance everyone sees it final, so a re-run sends nothing twice.
func TestClaimIsExclusiveAndFinalIsSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("claim")
	rows := b.create(t, spec, 5)

	r1, err := b.store.Claim(b.ctx, spec.ID, "A", rows, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := b.store.Claim(b.ctx, spec.ID, "A", rows, time.Minute)
	r2, err := b.store.Claim(b.ctx, spec.ID, "B", rows, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if r1.Results[i].Code != storage.Claimed || again.Results[i].Code != storage.Claimed || r2.Results[i].Code != storage.InFlight {
			t.Fatalf("row %d: A %v, A again %v, B %v; want Claimed, Claimed, InFlight", rows[i], r1.Results[i].Code, again.Results[i].Code, r2.Results[i].Code)
		}
	}
	// Only the owner settles its rows.
	if n, _ := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "B", accept(rows)); n != 0 {
		t.Fatalf("a non-owner recorded %d outcomes", n)
	}
	if n, err := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", accept(rows)); err != nil || n != 5 {
		t.Fatalf("record: %d, %v", n, err)
	}
	// Recording the same outcomes again changes nothing.
	if n, _ := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", accept(rows)); n != 0 {
		t.Fatalf("second record applied %d transitions, want 0", n)
	}
	r3, _ := b.store.Claim(b.ctx, spec.ID, "C", rows, time.Minute)
	for i := range rows {
		if r3.Results[i].Code != storage.AlreadyFinal || r3.Results[i].Accepted == "" {
			t.Fatalf("row %d after accept: %+v, want AlreadyFinal with its provider id", rows[i], r3.Results[i])
		}
	}
	p, _ := b.store.Progress(b.ctx, spec.ID)
	if p.Sent != 5 || p.Total != 5 {
		t.Fatalf("sent %d total %d", p.Sent, p.Total)
	}
}

// A stale claim whose attempt never started a request is taken over as a
// plain claim (nothing can have been sent). A stale request is taken over
// for reconciliation, with the time of the first request, which later
// takeovers keep; and the old attempt can neither stamp nor settle the rows
// any more.
func TestTakeoverKeepsTheFirstRequestTime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("stale")
	rows := b.create(t, spec, 2)
	if _, err := b.store.Claim(b.ctx, spec.ID, "A", rows, time.Minute); err != nil {
		t.Fatal(err)
	}
	stamped, err := b.store.Stamp(b.ctx, spec.ID, "A", rows[:1]) // row 1 starts a request; row 2 never does
	if err != nil || !stamped[0] {
		t.Fatalf("stamp: %v %v", stamped, err)
	}
	r, err := b.store.Claim(b.ctx, spec.ID, "B", rows, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Results[0].Code != storage.Stale || time.Since(r.Results[0].Since) > time.Minute {
		t.Fatalf("row 1: %+v, want Stale with the request time", r.Results[0])
	}
	if r.Results[1].Code != storage.Claimed {
		t.Fatalf("row 2: %v, want Claimed (never sent)", r.Results[1].Code)
	}
	first := r.Results[0].Since
	// A keeps going but owns nothing now.
	if got, _ := b.store.Stamp(b.ctx, spec.ID, "A", rows[1:]); got[0] {
		t.Fatal("the old attempt stamped a row it no longer owns")
	}
	if n, _ := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", []campaigns.Outcome{{Row: 1}, {Row: 2}}); n != 0 {
		t.Fatalf("the old attempt released %d rows it no longer owns", n)
	}
	// Later takeovers report the first request's time, not their own.
	time.Sleep(5 * time.Millisecond)
	r, _ = b.store.Claim(b.ctx, spec.ID, "C", rows[:1], 0)
	if r.Results[0].Code != storage.Stale || !r.Results[0].Since.Equal(first) {
		t.Fatalf("second takeover: %+v, want Stale since %v", r.Results[0], first)
	}
	stamped, _ = b.store.Stamp(b.ctx, spec.ID, "C", rows[:1])
	r, _ = b.store.Claim(b.ctx, spec.ID, "D", rows[:1], 0)
	if r.Results[0].Code != storage.Stale || !r.Results[0].Since.Equal(first) || !stamped[0] {
		t.Fatalf("after a re-stamp: %+v, want Stale since %v", r.Results[0], first)
	}
}

// Counters are transitions of the ledger: however often outcomes are
// recorded, concurrently and repeatedly, sent+failed+unknown+skipped = total
// and the campaign completes exactly when every recipient is final.
func TestCountersFollowTransitionsUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := campaigns.Spec{ID: "conc", Name: "t", Channel: campaigns.ChannelEmail, ChannelID: "ch", Message: "m", Subject: "s", Recipients: "r.csv"}
	rows := b.create(t, spec, 300)
	if _, err := b.store.Claim(b.ctx, spec.ID, "A", rows, time.Minute); err != nil {
		t.Fatal(err)
	}
	outs := make([]campaigns.Outcome, len(rows))
	for i, r := range rows {
		switch i % 3 {
		case 0:
			outs[i] = campaigns.Outcome{Row: r, State: storage.LedgerAccepted, Value: "x"}
		case 1:
			outs[i] = campaigns.Outcome{Row: r, State: storage.LedgerFailed, Value: "HTTP 400: bad"}
		case 2:
			outs[i] = campaigns.Outcome{Row: r, State: storage.LedgerUnknown, Value: "timeout"}
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < len(outs); i += 25 {
				if _, err := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", outs[i:min(i+25, len(outs))]); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	p, err := b.store.Progress(b.ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := [4]int64{p.Sent, p.Failed, p.Unknown, p.Pending}
	if diff := cmp.Diff([4]int64{100, 100, 100, 0}, got); diff != "" {
		t.Fatalf("sent, failed, unknown, pending (-want +got):\n%s", diff)
	}
	if p.State != campaigns.StateSent || p.FinishedAt != nil {
		t.Fatalf("state %s, want sent (the accepted emails await their statuses)", p.State)
	}
	var dlr []campaigns.Outcome
	for _, o := range outs {
		if o.State == storage.LedgerAccepted {
			dlr = append(dlr, campaigns.Outcome{Row: o.Row, State: storage.LedgerDelivered, Value: o.Value})
		}
	}
	for range 2 {
		if _, err := b.store.Record(b.ctx, spec.ID, storage.ModeDLR, "", dlr); err != nil {
			t.Fatal(err)
		}
	}
	if p, _ = b.store.Progress(b.ctx, spec.ID); p.State != campaigns.StateCompleted || p.FinishedAt == nil || p.Delivered != 100 {
		t.Fatalf("after the statuses: %s, delivered %d; want completed, 100", p.State, p.Delivered)
	}
	if diff := cmp.Diff(map[string]int64{"HTTP 400: bad": 100, "timeout": 100}, p.FailureReasons); diff != "" {
		t.Fatalf("failure reasons (-want +got):\n%s", diff)
	}
	// Recount from the ledger.
	counts := map[byte]int64{}
	if err := b.store.Scan(b.ctx, spec.ID, func(e storage.Entry) error { counts[e.State]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if counts['d'] != p.Sent || counts['f'] != p.Failed || counts['u'] != p.Unknown {
		t.Fatalf("ledger recount %v differs from counters %+v", counts, p)
	}
}

// An SMS campaign is sent once every recipient has a final send state, and
// completes only when every accepted message has a final delivery report (or
// expired); DLR transitions apply once.
func TestSMSCompletesAfterDeliveryReports(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("dlr")
	rows := b.create(t, spec, 3)
	if _, err := b.store.Claim(b.ctx, spec.ID, "A", rows, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", accept(rows)); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.store.Progress(b.ctx, spec.ID); p.State != campaigns.StateSent || p.SentAt == nil || p.FinishedAt != nil {
		t.Fatalf("state %s sent_at %v finished_at %v before DLRs, want sent, set, unset", p.State, p.SentAt, p.FinishedAt)
	}
	dlr := []campaigns.Outcome{
		{Row: 1, State: storage.LedgerDelivered, Value: "id1"},
		{Row: 2, State: storage.LedgerUndelivered, Value: "id2"},
		{Row: 3, State: storage.LedgerDLRExpired, Value: "id3"},
	}
	for i := 0; i < 2; i++ {
		if _, err := b.store.Record(b.ctx, spec.ID, storage.ModeDLR, "", dlr); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := b.store.Progress(b.ctx, spec.ID)
	if p.Delivered != 1 || p.Undelivered != 1 || p.DLRExpired != 1 || p.Sent != 3 || p.State != campaigns.StateCompleted {
		t.Fatalf("got %+v", p)
	}
}

// Read is a subset of delivered: a row read straight from accepted counts
// in both, a delivered row read later moves to read and counts read once,
// and nothing moves back (a late "delivered" after "read", a repeated
// "read", "failed" after delivery all change nothing).
func TestReadCountsOnceAndImpliesDelivered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("read")
	rows := b.create(t, spec, 4)
	if _, err := b.store.Claim(b.ctx, spec.ID, "A", rows, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", accept(rows)); err != nil {
		t.Fatal(err)
	}
	steps := [][]campaigns.Outcome{
		{{Row: 1, State: storage.LedgerDelivered, Value: "id1"}, {Row: 2, State: storage.LedgerRead, Value: "id2"},
			{Row: 3, State: storage.LedgerDelivered, Value: "id3"}, {Row: 4, State: storage.LedgerUndelivered, Value: "id4"}},
		{{Row: 1, State: storage.LedgerRead, Value: "id1"}, {Row: 2, State: storage.LedgerDelivered, Value: "id2"},
			{Row: 3, State: storage.LedgerUndelivered, Value: "id3"}, {Row: 4, State: storage.LedgerRead, Value: "id4"}},
		{{Row: 1, State: storage.LedgerRead, Value: "id1"}, {Row: 2, State: storage.LedgerRead, Value: "id2"}},
	}
	for _, outs := range steps {
		if _, err := b.store.Record(b.ctx, spec.ID, storage.ModeDLR, "", outs); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := b.store.Progress(b.ctx, spec.ID)
	if p.Delivered != 3 || p.Read != 2 || p.Undelivered != 1 || p.AwaitingDLR != 0 || p.State != campaigns.StateCompleted {
		t.Fatalf("delivered %d read %d undelivered %d awaiting %d state %s; want 3, 2, 1, 0, completed",
			p.Delivered, p.Read, p.Undelivered, p.AwaitingDLR, p.State)
	}
	want := map[int]byte{1: storage.LedgerRead, 2: storage.LedgerRead, 3: storage.LedgerDelivered, 4: storage.LedgerUndelivered}
	entries, err := b.store.Ledger(b.ctx, spec.ID, rows)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.State != want[e.Row] {
			t.Errorf("row %d in state %c, want %c", e.Row, e.State, want[e.Row])
		}
	}
}

// Releasing a claim puts the recipient back to pending, counting nothing.
func TestReleaseReturnsToPending(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("release")
	rows := b.create(t, spec, 2)
	if _, err := b.store.Claim(b.ctx, spec.ID, "A", rows, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", []campaigns.Outcome{{Row: 1}, {Row: 2}}); err != nil {
		t.Fatal(err)
	}
	r, _ := b.store.Claim(b.ctx, spec.ID, "B", rows, time.Minute)
	for _, res := range r.Results {
		if res.Code != storage.Claimed {
			t.Fatalf("after release: %v, want Claimed", res.Code)
		}
	}
	if p, _ := b.store.Progress(b.ctx, spec.ID); p.Done() != 0 {
		t.Fatalf("done %d after releases, want 0", p.Done())
	}
}

// Batches count into the total once, however often the dispatcher records them.
func TestAddBatchIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("batches")
	if _, err := b.store.Create(b.ctx, spec); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := b.store.AddBatch(b.ctx, spec.ID, 0, 50, 50); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.AddBatch(b.ctx, spec.ID, 1, 7, 57); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := b.store.Progress(b.ctx, spec.ID)
	if p.Total != 57 || p.Batches != 2 {
		t.Fatalf("total %d batches %d, want 57 and 2", p.Total, p.Batches)
	}
}

// Reusing an id with another spec is refused; the same spec is a no-op.
func TestCreateRefusesAnotherSpecUnderTheSameID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("same")
	if created, err := b.store.Create(b.ctx, spec); err != nil || !created {
		t.Fatalf("first create: %v %v", created, err)
	}
	if created, err := b.store.Create(b.ctx, spec); err != nil || created {
		t.Fatalf("same spec again: %v %v", created, err)
	}
	other := spec
	other.Message = "changed"
	if _, err := b.store.Create(b.ctx, other); err == nil || !strings.Contains(err.Error(), "different spec") {
		t.Fatalf("other spec: %v", err)
	}
}

// Paused campaigns claim nothing; resume, pause and cancel follow the
// allowed transitions only (a worker's pause never overrides a cancel, and
// nothing changes a completed campaign).
func TestStateTransitions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("paused")
	rows := b.create(t, spec, 2)
	if st, err := b.store.Pause(b.ctx, spec.ID, "key refused"); err != nil || st != campaigns.StatePaused {
		t.Fatalf("pause: %s %v", st, err)
	}
	r, err := b.store.Claim(b.ctx, spec.ID, "A", rows, time.Minute)
	if err != nil || r.State != campaigns.StatePaused || r.Results != nil {
		t.Fatalf("got %+v, %v", r, err)
	}
	if p, _ := b.store.Progress(b.ctx, spec.ID); p.Reason != "key refused" {
		t.Fatalf("reason %q", p.Reason)
	}
	if _, err := b.store.Pause(b.ctx, spec.ID, "again"); !errors.Is(err, storage.ErrTransition) {
		t.Fatalf("pause a paused campaign: %v", err)
	}
	if st, err := b.store.Resume(b.ctx, spec.ID, ""); err != nil || st != campaigns.StateRunning {
		t.Fatalf("resume: %s %v", st, err)
	}
	if st, err := b.store.Cancel(b.ctx, spec.ID, "operator"); err != nil || st != campaigns.StateCancelled {
		t.Fatalf("cancel: %s %v", st, err)
	}
	if _, err := b.store.Pause(b.ctx, spec.ID, "401"); !errors.Is(err, storage.ErrTransition) {
		t.Fatalf("a pause overrode a cancel: %v", err)
	}
	if _, err := b.store.Resume(b.ctx, "nope", ""); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("resume unknown: %v", err)
	}
}

// A task asynq gives up on leaves no recipient pending: unsent ones fail
// with the reason, ones whose request started become unknown.
func TestAbandonSettlesEverything(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("abandon")
	rows := b.create(t, spec, 3)
	if _, err := b.store.Claim(b.ctx, spec.ID, "A", rows[:2], time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Stamp(b.ctx, spec.ID, "A", rows[:1]); err != nil {
		t.Fatal(err)
	}
	outs := []campaigns.Outcome{{Row: 1, State: 'f', Value: "gave up"}, {Row: 2, State: 'f', Value: "gave up"}, {Row: 3, State: 'f', Value: "gave up"}}
	if n, err := b.store.Record(b.ctx, spec.ID, storage.ModeAbandon, "", outs); err != nil || n != 3 {
		t.Fatalf("abandon: %d %v", n, err)
	}
	p, _ := b.store.Progress(b.ctx, spec.ID)
	if p.Unknown != 1 || p.Failed != 2 || p.Pending != 0 {
		t.Fatalf("unknown %d failed %d pending %d; want 1 2 0", p.Unknown, p.Failed, p.Pending)
	}
}

// The ledger stays compact: under 100 bytes of Redis per recipient with a
// provider id in every entry (measured on a real redis-server).
func TestLedgerBytesPerRecipient(t *testing.T) {
	t.Parallel()
	srv := redistest.StartWith(t, redistest.Options{RequireReal: true})
	rdb := srv.Client(t)
	store := storage.New(rdb)
	ctx := context.Background()
	const n = 100_000
	spec := smsSpec("mem")
	if _, err := store.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	before := usedMemory(t, rdb)
	rows := make([]int, 0, 50)
	for start := 1; start <= n; start += 50 {
		rows = rows[:0]
		for r := start; r < start+50; r++ {
			rows = append(rows, r)
		}
		if _, err := store.Claim(ctx, spec.ID, "A", rows, time.Minute); err != nil {
			t.Fatal(err)
		}
		outs := make([]campaigns.Outcome, len(rows))
		for i, r := range rows {
			// A 22-digit id like OneRoute's SMS ids.
			outs[i] = campaigns.Outcome{Row: r, State: storage.LedgerDelivered, Value: fmt.Sprintf("47%020d", r)}
		}
		if _, err := store.Record(ctx, spec.ID, storage.ModeSend, "A", accept(rows)); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Record(ctx, spec.ID, storage.ModeDLR, "", outs); err != nil {
			t.Fatal(err)
		}
	}
	after := usedMemory(t, rdb)
	per := float64(after-before) / n
	t.Logf("ledger: %.1f bytes of Redis per recipient (%d recipients, %d bytes)", per, n, after-before)
	if per >= 100 {
		t.Fatalf("ledger uses %.1f bytes per recipient, target < 100", per)
	}
}

func usedMemory(t *testing.T, rdb *redis.Client) int64 { return redistest.UsedMemory(t, rdb) }
