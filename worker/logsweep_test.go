package worker

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// FetchLogs: the fake provider has no logs; log sweeps are tested against
// the sandbox.
func (f *fakeProvider) FetchLogs(ctx context.Context, lf oneroute.LogFilter, p oneroute.Page) ([]oneroute.LogEntry, *oneroute.Meta, error) {
	return nil, nil, nil
}

// trackBundle runs real workers against the sandbox with no webhooks, so
// every WhatsApp and email status comes from the Logs API.
type trackBundle struct {
	ctx   context.Context
	sb    *sandbox.Server
	store *storage.Store
	enq   *asynq.Client
}

func setupTrack(t *testing.T) *trackBundle {
	t.Helper()
	return setupTrackWith(t, sandbox.Options{DLRDelay: 100 * time.Millisecond, ReadDelay: 200 * time.Millisecond}, 3*time.Second)
}

func setupTrackWith(t *testing.T, so sandbox.Options, maxAge time.Duration) *trackBundle {
	t.Helper()
	srv := redistest.Start(t)
	sb := sandbox.New(so)
	t.Cleanup(sb.Close)
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	rdb := srv.Client(t)
	client, err := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: sandbox.KeyPrefix + "track"})
	if err != nil {
		t.Fatal(err)
	}
	b := &trackBundle{ctx: context.Background(), sb: sb, store: storage.New(rdb), enq: asynq.NewClientFromRedisClient(rdb)}
	w := NewServer(rdb, Deps{Store: b.store, Provider: client, Enqueuer: b.enq},
		Options{Concurrency: 10, PollInterval: 20 * time.Millisecond, DLRInterval: 200 * time.Millisecond, DLRMaxAge: maxAge,
			StatusFallbackAfter: time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return b
}

// campaign creates and enqueues a dispatched campaign of spec s with n
// recipients made by to(row), in batches of 50.
func (b *trackBundle) campaign(t *testing.T, s campaigns.Spec, n int, to func(row int) string) {
	t.Helper()
	if _, err := b.store.Create(b.ctx, s); err != nil {
		t.Fatal(err)
	}
	var batches []*campaigns.Batch
	for seq := 0; seq*50 < n; seq++ {
		batch := &campaigns.Batch{Campaign: s.ID, Seq: seq, Channel: s.Channel, ChannelID: s.ChannelID, From: s.From}
		if s.Template != nil {
			batch.Template = s.Template.Name
		}
		if s.Channel == campaigns.ChannelEmail {
			batch.Shared = &campaigns.Content{Subject: "Hello", Text: "Hi there"}
		}
		for row := seq*50 + 1; row <= min(seq*50+50, n); row++ {
			it := campaigns.Item{Row: row, To: to(row)}
			if s.Channel == campaigns.ChannelWhatsAppTemplate {
				it.Content = &campaigns.Content{Params: []string{"Ada"}}
			}
			batch.Items = append(batch.Items, it)
		}
		if _, err := b.store.AddBatch(b.ctx, s.ID, seq, len(batch.Items), batch.Items[len(batch.Items)-1].Row); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, batch)
	}
	if err := b.store.FinishDispatch(b.ctx, s.ID, storage.DispatchCounts{Rows: n}); err != nil {
		t.Fatal(err)
	}
	for _, batch := range batches {
		if err := tasks.Enqueue(b.ctx, b.enq, tasks.Send(batch, tasks.Options{})); err != nil {
			t.Fatal(err)
		}
	}
}

func (b *trackBundle) completed(t *testing.T, id string) campaigns.Progress {
	t.Helper()
	var p campaigns.Progress
	testwait.For(t, "campaign "+id+" completed", time.Minute, func() bool {
		var err error
		if p, err = b.store.Progress(b.ctx, id); err != nil {
			t.Fatal(err)
		}
		return p.State == campaigns.StateCompleted
	})
	return p
}

// ledgerState is the ledger state a tracked message must end in for the
// sandbox's status of it: a message the sandbox leaves sent for ever
// expires.
var ledgerState = map[string]byte{"delivered": storage.LedgerDelivered, "read": storage.LedgerRead, "failed": storage.LedgerUndelivered,
	"sent": storage.LedgerDLRExpired}

// checkRows fails unless every row of the campaign ends in the state the
// sandbox decided for its message, found by the message's identifier.
func (b *trackBundle) checkRows(t *testing.T, id string, n int) map[string]int64 {
	t.Helper()
	statuses := b.sb.Statuses()
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i + 1
	}
	entries, err := b.store.Ledger(b.ctx, id, rows)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	bad := 0
	for _, e := range entries {
		status, ok := statuses[campaigns.Identifier(id, e.Row)]
		if !ok {
			t.Fatalf("row %d: the sandbox has no message with its identifier", e.Row)
		}
		counts[status]++
		if want := ledgerState[status]; e.State != want {
			if bad++; bad <= 5 {
				t.Errorf("row %d: ledger state %q, want %q (sandbox: %s)", e.Row, e.State, want, status)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d rows differ from the sandbox", bad, n)
	}
	return counts
}

// Done-when, WhatsApp with webhooks off: a 1,000-recipient template
// campaign ends with every recipient delivered, read or failed exactly as
// the sandbox decided (row by row, by identifier), the ones it leaves sent
// expired, all from the Logs API in a few requests per hundred messages.
func TestWhatsAppStatusesFromLogs(t *testing.T) {
	t.Parallel()
	const n = 1000
	b := setupTrack(t)
	b.campaign(t, campaigns.Spec{ID: "walogs", Channel: campaigns.ChannelWhatsAppTemplate, From: sandbox.WhatsAppNumber,
		Template: &campaigns.Template{Name: "first_welcome_messsage"}, Recipients: "r.csv"}, n, func(row int) string { return fmt.Sprintf("+234803%07d", row) })
	p := b.completed(t, "walogs")
	counts := b.checkRows(t, "walogs", n)
	// Last digits 1..9,0 in turn: 0 failed, 9 sent for ever, 1 and 8
	// delivered, 2..7 read.
	want := map[string]int64{"failed": 100, "sent": 100, "delivered": 200, "read": 600}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("sandbox %s: %d messages, want %d", k, counts[k], v)
		}
	}
	if p.Sent != n || p.Delivered != 800 || p.Read != 600 || p.Undelivered != 100 || p.DLRExpired != 100 {
		t.Errorf("counters: sent %d delivered %d read %d undelivered %d dlr_expired %d; want 1000 800 600 100 100",
			p.Sent, p.Delivered, p.Read, p.Undelivered, p.DLRExpired)
	}
	st := b.sb.Stats()
	if st.Duplicates != 0 || st.Accepted != n {
		t.Fatalf("sandbox accepted %d with %d duplicates", st.Accepted, st.Duplicates)
	}
	perMsg := float64(st.LogRequests) / n
	t.Logf("%d messages: %d log requests (%.4f per message)", n, st.LogRequests, perMsg)
	if perMsg > 0.05 {
		t.Errorf("%d log requests for %d messages, more than 0.05 per message", st.LogRequests, n)
	}
	// A pass may still be under way (read watch after completion): its
	// pages are saved when it ends.
	var w storage.Sweep
	testwait.For(t, "the sweep memory to count every log request", 10*time.Second, func() bool {
		w, _ = b.store.LoadSweep(b.ctx, "walogs")
		st = b.sb.Stats()
		return w.Pages == st.LogRequests
	})
}

// Email is tracked the same way: each address' identifier names it in the
// logs, and its final status lands in the ledger as the sandbox decided.
func TestEmailStatusesFromLogs(t *testing.T) {
	t.Parallel()
	const n = 200
	b := setupTrack(t)
	b.campaign(t, campaigns.Spec{ID: "emlogs", Channel: campaigns.ChannelEmail, ChannelID: sandbox.EmailChannelID, Recipients: "r.csv"},
		n, func(row int) string { return fmt.Sprintf("user%04d@example.com", row) })
	p := b.completed(t, "emlogs")
	counts := b.checkRows(t, "emlogs", n)
	if counts["failed"] != 20 || counts["sent"] != 20 {
		t.Errorf("sandbox outcomes %v; want 20 failed and 20 sent for ever", counts)
	}
	if p.Sent != n || p.Delivered != counts["delivered"]+counts["read"] || p.Undelivered != 20 || p.DLRExpired != 20 {
		t.Errorf("counters: sent %d delivered %d undelivered %d dlr_expired %d; sandbox %v", p.Sent, p.Delivered, p.Undelivered, p.DLRExpired, counts)
	}
}

// A status that arrives twice, by webhook and by the Logs API, or as the
// same webhook replayed, counts once; a read after a recorded delivery
// counts as read without counting the delivery again.
func TestStatusCountsOnce(t *testing.T) {
	t.Parallel()
	b := setupSweep(t, Options{RequestTimeout: time.Second, DLRInterval: 100 * time.Millisecond, DLRMaxAge: time.Minute, StatusFallbackAfter: time.Millisecond})
	s := campaigns.Spec{ID: "twice", Channel: campaigns.ChannelWhatsAppTemplate, From: sandbox.WhatsAppNumber, Template: &campaigns.Template{Name: "first_welcome_messsage"}, Recipients: "r.csv"}
	if _, err := b.store.Create(b.ctx, s); err != nil {
		t.Fatal(err)
	}
	batch := &campaigns.Batch{Campaign: "twice", Channel: s.Channel, From: s.From, Template: s.Template.Name}
	for row, to := range []string{"", "+2348031111112", "+2348031111111"} {
		if to != "" {
			batch.Items = append(batch.Items, campaigns.Item{Row: row, To: to, Content: &campaigns.Content{Params: []string{"Ada"}}})
		}
	}
	if _, err := b.store.AddBatch(b.ctx, "twice", 0, 2, 2); err != nil {
		t.Fatal(err)
	}
	if err := b.store.FinishDispatch(b.ctx, "twice", storage.DispatchCounts{Rows: 2}); err != nil {
		t.Fatal(err)
	}
	if err := b.mux.ProcessTask(b.ctx, asynq.NewTask(tasks.SendType(batch.Channel), tasks.Encode(batch))); err != nil {
		t.Fatal(err)
	}
	entries, err := b.store.Ledger(b.ctx, "twice", []int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	// Webhooks: row 1 delivered (read later), row 2 delivered; each twice.
	hooks := []campaigns.Outcome{{Row: 1, State: storage.LedgerDelivered, Value: entries[0].Value}, {Row: 2, State: storage.LedgerDelivered, Value: entries[1].Value}}
	for range 2 {
		if _, err := b.store.Record(b.ctx, "twice", storage.ModeDLR, "", hooks); err != nil {
			t.Fatal(err)
		}
	}
	if p := b.progress(t, "twice"); p.State != campaigns.StateCompleted || p.Delivered != 2 || p.Read != 0 {
		t.Fatalf("after the webhooks: %s, delivered %d, read %d; want completed, 2, 0", p.State, p.Delivered, p.Read)
	}
	// The sandbox reads row 1 (digit 2) after ReadDelay; its log then says
	// read, and row 2 delivered: a log pass applies both again.
	testwait.For(t, "the sandbox read row 1", 10*time.Second, func() bool {
		return b.sb.Statuses()[campaigns.Identifier("twice", 1)] == "read"
	})
	// A completed campaign's sweep ends at once; apply a pass by hand.
	ls := &logSweep{sweep: &sweep{h: &SweepHandler{deps: Deps{Store: b.store, Provider: b.client}, opts: b.opts.withDefaults()},
		p: tasks.DLRSweep{Campaign: "twice", Channel: string(s.Channel)}, st: storage.DLRStatus{StartedAt: time.Now().Add(-time.Minute)},
		w: &storage.Sweep{}, now: time.Now(), settled: map[string]bool{}}}
	for range 2 {
		if err := ls.scan(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if p := b.progress(t, "twice"); p.Delivered != 2 || p.Read != 1 || p.Sent != 2 {
		t.Fatalf("after logs twice: sent %d, delivered %d, read %d; want 2, 2, 1", p.Sent, p.Delivered, p.Read)
	}
}

// The Logs API is a fallback: before StatusFallbackAfter has passed since
// the first send, the sweep leaves the statuses to the webhooks and reads
// no log, and comes back when it has passed.
func TestLogSweepWaitsForWebhooks(t *testing.T) {
	t.Parallel()
	b := setupSweep(t, Options{RequestTimeout: time.Second, DLRInterval: 100 * time.Millisecond, DLRMaxAge: time.Hour, StatusFallbackAfter: time.Minute})
	s := campaigns.Spec{ID: "early", Channel: campaigns.ChannelWhatsAppTemplate, From: sandbox.WhatsAppNumber,
		Template: &campaigns.Template{Name: "first_welcome_messsage"}, Recipients: "r.csv"}
	if _, err := b.store.Create(b.ctx, s); err != nil {
		t.Fatal(err)
	}
	batch := &campaigns.Batch{Campaign: "early", Channel: s.Channel, From: s.From, Template: s.Template.Name,
		Items: []campaigns.Item{{Row: 1, To: "+2348031111111", Content: &campaigns.Content{Params: []string{"Ada"}}}}}
	if _, err := b.store.AddBatch(b.ctx, "early", 0, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.store.FinishDispatch(b.ctx, "early", storage.DispatchCounts{Rows: 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.mux.ProcessTask(b.ctx, asynq.NewTask(tasks.SendType(batch.Channel), tasks.Encode(batch))); err != nil {
		t.Fatal(err)
	}
	sweeps := b.enq.take(tasks.TypeDLRSweep)
	if len(sweeps) != 1 {
		t.Fatalf("%d sweeps enqueued, want 1", len(sweeps))
	}
	var p tasks.DLRSweep
	if err := tasks.Decode(sweeps[0].Payload(), &p); err != nil || p.Channel != string(campaigns.ChannelWhatsAppTemplate) {
		t.Fatalf("sweep payload %+v, %v; want the WhatsApp channel", p, err)
	}
	err := b.mux.ProcessTask(b.ctx, sweeps[0])
	if err == nil || IsFailure(err) {
		t.Fatalf("sweep = %v; want a not-a-failure retry", err)
	}
	if d := RetryDelay(time.Second)(0, err, sweeps[0]); d < 50*time.Second || d > time.Minute {
		t.Errorf("sweep comes back in %s; want about the fallback time, 1m", d)
	}
	if n := b.sb.Stats().LogRequests; n != 0 {
		t.Errorf("%d log requests before the fallback time; want 0", n)
	}
	if pr := b.progress(t, "early"); pr.State != campaigns.StateSent || pr.AwaitingDLR != 1 {
		t.Errorf("campaign %s awaiting %d; want sent, 1", pr.State, pr.AwaitingDLR)
	}
}

// A WhatsApp campaign whose messages are all final before they are read
// completes at once, and its sweep still counts the reads that follow
// within the read watch, from the Logs API.
func TestReadsAfterCompletion(t *testing.T) {
	t.Parallel()
	const n = 20
	b := setupTrackWith(t, sandbox.Options{DLRDelay: 100 * time.Millisecond, ReadDelay: 2500 * time.Millisecond}, 10*time.Second)
	// Last digits 1 (never read) and 2 (read) in turn.
	b.campaign(t, campaigns.Spec{ID: "late", Channel: campaigns.ChannelWhatsAppTemplate, From: sandbox.WhatsAppNumber,
		Template: &campaigns.Template{Name: "first_welcome_messsage"}, Recipients: "r.csv"}, n, func(row int) string { return fmt.Sprintf("+234803%06d%d", row, 1+row%2) })
	p := b.completed(t, "late")
	if p.Delivered != n || p.Read == n/2 {
		t.Fatalf("at completion: delivered %d, read %d; want %d delivered and the reads still to come", p.Delivered, p.Read, n)
	}
	testwait.For(t, "the reads counted", 30*time.Second, func() bool {
		p, _ = b.store.Progress(b.ctx, "late")
		return p.Read >= n/2
	})
	b.checkRows(t, "late", n)
	if p.Read != n/2 || p.Delivered != n || p.State != campaigns.StateCompleted {
		t.Errorf("%s: delivered %d, read %d; want completed, %d, %d", p.State, p.Delivered, p.Read, n, n/2)
	}
}
