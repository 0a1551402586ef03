package webhooks_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/webhooks"
)

// applierBundle records events as the receiver would and applies them by
// hand, round by round, on a fake clock.
type applierBundle struct {
	ctx   context.Context
	store *storage.Store
	app   *webhooks.Applier
	now   time.Time
}

func setupApplier(t *testing.T, o webhooks.ApplierOptions) *applierBundle {
	t.Helper()
	b := &applierBundle{ctx: context.Background(), store: storage.New(redistest.Start(t).Client(t)), now: time.Now()}
	o.Block = time.Millisecond
	o.Now = func() time.Time { return b.now }
	b.app = webhooks.NewApplier(b.store, o)
	if err := b.store.EnsureHookGroup(b.ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *applierBundle) record(t *testing.T, bodies ...[]byte) {
	t.Helper()
	evs := make([]storage.HookEvent, len(bodies))
	for i, body := range bodies {
		evs[i] = storage.HookEvent{Digest: oneroute.ReplayKey(body), Body: body}
	}
	if _, err := b.store.RecordHooks(b.ctx, evs); err != nil {
		t.Fatal(err)
	}
}

func (b *applierBundle) round(t *testing.T) int {
	t.Helper()
	n, err := b.app.Round(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// accepted creates a campaign of n recipients and records each accepted
// with provider id pid(row), as a worker would.
func (b *applierBundle) accepted(t *testing.T, id string, ch campaigns.Channel, n int, pid func(int) string) {
	t.Helper()
	s := campaigns.Spec{ID: id, Channel: ch, ChannelID: "c1", Message: "hi", Recipients: "r.csv"}
	if ch == campaigns.ChannelWhatsAppTemplate {
		s = campaigns.Spec{ID: id, Channel: ch, From: "2348030000000", Template: &campaigns.Template{Name: "t", Language: "en"}, Recipients: "r.csv"}
	}
	if _, err := b.store.Create(b.ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.AddBatch(b.ctx, id, 0, n, n); err != nil {
		t.Fatal(err)
	}
	if err := b.store.FinishDispatch(b.ctx, id, storage.DispatchCounts{Rows: n}); err != nil {
		t.Fatal(err)
	}
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i + 1
	}
	reply, err := b.store.Claim(b.ctx, id, "tok", rows, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_ = reply
	if _, err := b.store.Stamp(b.ctx, id, "tok", rows); err != nil {
		t.Fatal(err)
	}
	var outs []campaigns.Outcome
	for _, r := range rows {
		outs = append(outs, campaigns.Outcome{Row: r, State: storage.LedgerAccepted, Value: pid(r)})
	}
	if _, err := b.store.Record(b.ctx, id, storage.ModeSend, "tok", outs); err != nil {
		t.Fatal(err)
	}
}

func (b *applierBundle) progress(t *testing.T, id string) campaigns.Progress {
	t.Helper()
	p, err := b.store.Progress(b.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func statusBody(identifier, status string) []byte {
	return []byte(fmt.Sprintf(`{"event":"messageStatus","message":{"externalId":"wamid-%s","status":%q,"identifier":%q}}`, identifier, status, identifier))
}

// SMS reports find their campaign and row through the provider-id index,
// count once however often they arrive (and beside a sweep's), and mark the
// campaign's reports as coming by webhook.
func TestApplierSettlesSMSReportsOnce(t *testing.T) {
	t.Parallel()
	b := setupApplier(t, webhooks.ApplierOptions{})
	pid := func(r int) string { return fmt.Sprintf("9000%d", r) }
	b.accepted(t, "other", campaigns.ChannelSMS, 2, func(r int) string { return fmt.Sprintf("7000%d", r) })
	b.accepted(t, "sms", campaigns.ChannelSMS, 3, pid)
	b.record(t, dlrBody(pid(1), "delivered"), dlrBody(pid(2), "undelivered"), dlrBody(pid(3), "pending"))
	if n := b.round(t); n != 3 {
		t.Fatalf("applied %d events, want 3", n)
	}
	// The same report again (a retry OneRoute made after a lost answer has
	// another body only if it changed; here a sweep read it too).
	if _, err := b.store.Settle(b.ctx, "sms", []storage.Report{{ID: pid(1), State: storage.LedgerDelivered}}); err != nil {
		t.Fatal(err)
	}
	p := b.progress(t, "sms")
	if p.Delivered != 1 || p.Undelivered != 1 {
		t.Fatalf("delivered %d, undelivered %d; want 1 and 1", p.Delivered, p.Undelivered)
	}
	if q := b.progress(t, "other"); q.Delivered+q.Undelivered != 0 {
		t.Fatalf("another campaign changed: %+v", q)
	}
	if ok, err := b.store.HookedReports(b.ctx, "sms"); err != nil || !ok {
		t.Fatalf("campaign not marked as receiving reports by webhook (%v)", err)
	}
}

// WhatsApp statuses find their row by identifier: delivered, then read
// (counted in both), failed; "sent" changes nothing.
func TestApplierAppliesWhatsAppStatuses(t *testing.T) {
	t.Parallel()
	b := setupApplier(t, webhooks.ApplierOptions{})
	b.accepted(t, "wa", campaigns.ChannelWhatsAppTemplate, 3, func(r int) string { return fmt.Sprintf("wamid-%d", r) })
	id := func(r int) string { return campaigns.Identifier("wa", r) }
	b.record(t, statusBody(id(1), "sent"), statusBody(id(1), "delivered"), statusBody(id(2), "read"), statusBody(id(3), "failed"),
		statusBody("not-ours", "delivered"))
	b.round(t)
	b.record(t, statusBody(id(1), "read"))
	b.round(t)
	p := b.progress(t, "wa")
	if p.Delivered != 2 || p.Read != 2 || p.Undelivered != 1 {
		t.Fatalf("delivered %d, read %d, undelivered %d; want 2, 2, 1", p.Delivered, p.Read, p.Undelivered)
	}
}

// A report that races its send's record (the provider id not indexed yet)
// is put off, applied once the send is recorded; one of an unknown message
// is dropped after OrphanFor. Inbound messages and campaign completions
// reach their funcs.
func TestApplierPutsOffOrphans(t *testing.T) {
	t.Parallel()
	var inbound, completed int
	b := setupApplier(t, webhooks.ApplierOptions{
		OrphanFor: time.Minute,
		Inbound:   func(context.Context, *oneroute.NewMessage) error { inbound++; return nil },
		Completed: func(context.Context, *oneroute.CampaignCompleted) error { completed++; return nil },
	})
	b.record(t, dlrBody("5551", "delivered"), dlrBody("0000", "delivered"),
		[]byte(`{"event":"newMessage","message":{"content":"STOP"},"conversation":{"id":"c1"}}`),
		[]byte(`{"event":"campaignCompleted","campaign_id":"x","total":0,"sent":0,"failed":0,"messages":[]}`))
	b.round(t)
	if inbound != 1 || completed != 1 {
		t.Fatalf("inbound %d, completed %d; want 1 and 1", inbound, completed)
	}
	b.accepted(t, "late", campaigns.ChannelSMS, 1, func(int) string { return "5551" })
	b.now = b.now.Add(500 * time.Millisecond)
	b.round(t)
	if p := b.progress(t, "late"); p.Delivered != 0 {
		t.Fatalf("put-off report applied before it was due: %+v", p)
	}
	b.now = b.now.Add(time.Second)
	b.round(t)
	if p := b.progress(t, "late"); p.Delivered != 1 {
		t.Fatalf("put-off report not applied once due: delivered %d", p.Delivered)
	}
	due := func() int {
		d, err := b.store.DueHooks(b.ctx, b.now.Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(d)
	}
	if n := due(); n != 1 {
		t.Fatalf("%d put-off events, want 1 (the unknown message's)", n)
	}
	for i := 0; i < 20 && due() > 0; i++ {
		b.now = b.now.Add(time.Minute)
		b.round(t)
	}
	if n := due(); n != 0 {
		t.Fatalf("the unknown message's report is still put off after OrphanFor")
	}
}
