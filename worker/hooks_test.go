package worker

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// A report a webhook already brought makes its poll unnecessary: a dlr:poll
// reads only the rows still awaiting their report (issue 10).
func TestDLRPollSkipsReportsAlreadyRecorded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("dlrskip", campaigns.ChannelSMS)
	batch := b.campaign(t, s, "+2348030000001", "+2348030000002", "+2348030000003")
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	b.enq.take(tasks.TypeDLRSweep)
	rows := []int{batch.Items[0].Row, batch.Items[1].Row, batch.Items[2].Row}
	entries, err := b.store.Ledger(b.ctx, s.ID, rows)
	if err != nil {
		t.Fatal(err)
	}
	var items []tasks.DLRItem
	for _, e := range entries {
		items = append(items, tasks.DLRItem{Row: e.Row, ID: e.Value})
	}
	// Webhooks brought the first two reports.
	if _, err := b.store.Record(b.ctx, s.ID, storage.ModeDLR, "", []campaigns.Outcome{
		{Row: rows[0], State: storage.LedgerDelivered, Value: items[0].ID},
		{Row: rows[1], State: storage.LedgerUndelivered, Value: items[1].ID},
	}); err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	b.prov.dlr = func(id string) (oneroute.DLR, error) {
		reads.Add(1)
		if id != items[2].ID {
			t.Errorf("report of %s read again", id)
		}
		return oneroute.DLR{Conversation: oneroute.SMSMessage{ID: id, Status: oneroute.DLRDelivered}}, nil
	}
	poll := &tasks.DLRPoll{Campaign: s.ID, Key: "b0-x", Since: time.Now().Unix(), Items: items}
	if err := b.mux.ProcessTask(b.ctx, asynq.NewTask(tasks.TypeDLRPoll, tasks.Encode(poll))); err != nil {
		t.Fatal(err)
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d reports read, want 1 (the one no webhook brought)", n)
	}
	if got := b.progress(t, s.ID); got.Delivered != 2 || got.Undelivered != 1 || got.State != campaigns.StateCompleted {
		t.Fatalf("got %+v", got)
	}
	// All recorded: a poll of them makes no request at all.
	if err := b.mux.ProcessTask(b.ctx, asynq.NewTask(tasks.TypeDLRPoll, tasks.Encode(poll))); err != nil {
		t.Fatal(err)
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d reports read after all were recorded, want still 1", n)
	}
}

// While a campaign's reports arrive by webhook its sweep reads neither
// pages nor reports; once they stop, the sweep reads them itself and
// settles everything (issue 10).
func TestSweepReadsNothingWhileWebhooksBringReports(t *testing.T) {
	t.Parallel()
	b := setupSweep(t, Options{RequestTimeout: time.Second, DLRInterval: 100 * time.Millisecond, DLRMaxAge: 2 * time.Second, SweepPageSize: 100})
	b.send(t, "swhk", 300)
	sweeps := b.enq.take(tasks.TypeDLRSweep)
	if len(sweeps) == 0 {
		t.Fatal("no sweep enqueued")
	}
	if err := b.store.MarkHooked(b.ctx, []string{"swhk"}, 0); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		err := b.mux.ProcessTask(b.ctx, sweeps[0])
		if err == nil || IsFailure(err) {
			t.Fatalf("sweep pass: %v; want a not-a-failure retry", err)
		}
	}
	if st := b.sb.Stats(); st.SMSListRequests != 0 || st.DLRRequests != 0 {
		t.Fatalf("%d list requests and %d report reads while webhooks bring the reports, want none", st.SMSListRequests, st.DLRRequests)
	}
	if p := b.progress(t, "swhk"); p.Delivered+p.Undelivered != 0 {
		t.Fatalf("the sweep settled reports while hooked: %+v", p)
	}
	// The webhooks stop (their liveness expires): the sweep takes over.
	if err := b.rdb.Del(b.ctx, "fanout:{swhk}:hk").Err(); err != nil {
		t.Fatal(err)
	}
	b.enq.take(tasks.TypeDLRSweep)
	if _, err := b.enq.EnqueueContext(b.ctx, sweeps[0]); err != nil {
		t.Fatal(err)
	}
	b.sweepUntilDone(t, "swhk", 30*time.Second)
	checkOutcomes(t, b.progress(t, "swhk"), b.sb.Stats())
}

// Nothing expires while a campaign's reports still arrive by webhook: a
// hooked pass past DLRMaxAge expires nothing and comes back once the
// webhooks can have stopped; the first pass after they stopped expires
// what is left.
func TestHookedSweepDefersTheExpiry(t *testing.T) {
	t.Parallel()
	b := setupSweep(t, Options{RequestTimeout: time.Second, DLRInterval: 100 * time.Millisecond, DLRMaxAge: time.Millisecond, SweepPageSize: 100})
	b.send(t, "swexp", 20)
	sweeps := b.enq.take(tasks.TypeDLRSweep)
	if len(sweeps) == 0 {
		t.Fatal("no sweep enqueued")
	}
	if err := b.store.MarkHooked(b.ctx, []string{"swexp"}, 0); err != nil {
		t.Fatal(err)
	}
	// The last send must be DLRMaxAge (1ms) old by the sweep's clock; the
	// settle time is Redis' clock in ms, so a fast run could be under it.
	time.Sleep(5 * time.Millisecond)
	err := b.mux.ProcessTask(b.ctx, sweeps[0])
	var nf *notFailure
	if !errors.As(err, &nf) || nf.retryIn > storage.HookLiveTTL {
		t.Fatalf("hooked pass past the max age: %v; want a retry within %s", err, storage.HookLiveTTL)
	}
	if p := b.progress(t, "swexp"); p.DLRExpired != 0 {
		t.Fatalf("%d reports expired while webhooks bring them", p.DLRExpired)
	}
	if err := b.rdb.Del(b.ctx, "fanout:{swexp}:hk").Err(); err != nil {
		t.Fatal(err)
	}
	b.enq.take(tasks.TypeDLRSweep)
	if _, err := b.enq.EnqueueContext(b.ctx, sweeps[0]); err != nil {
		t.Fatal(err)
	}
	b.sweepUntilDone(t, "swexp", 30*time.Second)
	if p := b.progress(t, "swexp"); p.State != campaigns.StateCompleted {
		t.Fatalf("campaign %s after the webhooks stopped, want completed", p.State)
	}
}
