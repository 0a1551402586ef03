package webhooks_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
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
	"github.com/fanoutdev/fanout/webhooks"
	"github.com/fanoutdev/fanout/worker"
)

// smsCampaign creates a dispatched SMS campaign on the sandbox's channel of
// n personalised texts to numbers whose last digits run 1, 2, ... 9, 0 in
// turn (the sandbox keeps those ending in 9 pending, and fails those
// ending in 0), and enqueues its batches of 50.
func smsCampaign(t *testing.T, store *storage.Store, enq *asynq.Client, id string, n int) {
	t.Helper()
	s := campaigns.Spec{ID: id, Channel: campaigns.ChannelSMS, ChannelID: sandbox.SMSChannelID, Message: "hi {{.x}}", Recipients: "r.csv"}
	campaign(t, store, enq, s, n, func(to string) *campaigns.Content { return &campaigns.Content{Text: "hi " + to} })
}

// campaign creates a dispatched campaign of spec s with n recipients,
// +234803 and the row's number (last digits 1, 2, ... 9, 0 in turn), whose
// content is content(to), and enqueues its batches of 50.
func campaign(t *testing.T, store *storage.Store, enq *asynq.Client, s campaigns.Spec, n int, content func(to string) *campaigns.Content) {
	t.Helper()
	ctx := context.Background()
	if _, err := store.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	var batches []*campaigns.Batch
	for seq := 0; seq*50 < n; seq++ {
		batch := &campaigns.Batch{Campaign: s.ID, Seq: seq, Channel: s.Channel, ChannelID: s.ChannelID, From: s.From}
		if s.Template != nil {
			batch.Template = s.Template.Name
		}
		for row := seq*50 + 1; row <= min(seq*50+50, n); row++ {
			to := fmt.Sprintf("+234803%07d", row)
			batch.Items = append(batch.Items, campaigns.Item{Row: row, To: to, Content: content(to)})
		}
		if _, err := store.AddBatch(ctx, s.ID, seq, len(batch.Items), batch.Items[len(batch.Items)-1].Row); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, batch)
	}
	if err := store.FinishDispatch(ctx, s.ID, storage.DispatchCounts{Rows: n}); err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := tasks.Enqueue(ctx, enq, tasks.Send(b, tasks.Options{})); err != nil {
			t.Fatal(err)
		}
	}
}

// The SMS criterion of issue 10, end to end (asynq, a worker server, the
// sandbox, the receiver and the applier): a 5,000-recipient SMS campaign
// ends with delivered and undelivered equal to the sandbox's own outcomes.
// With webhooks on, its delivery reports cost at most 0.02 provider
// requests (report reads and list pages) per message; with webhooks off,
// the sweep alone reaches the same counts. (The reports the sandbox keeps
// pending expire after FANOUT_DLR_MAX_AGE, set long here so that nothing
// races the webhooks; worker's TestDeliveryReportsInBulk and
// TestHookedSweepDefersTheExpiry cover the expiry.)
func TestSMSCampaignWithWebhooks(t *testing.T) {
	t.Parallel()
	for _, hooks := range []bool{true, false} {
		t.Run(fmt.Sprintf("webhooks=%v", hooks), func(t *testing.T) {
			t.Parallel()
			smsEndToEnd(t, hooks)
		})
	}
}

func smsEndToEnd(t *testing.T, hooks bool) {
	const n = 5000
	rdb := redistest.Start(t).Client(t)
	store := storage.New(rdb)
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	t.Cleanup(func() { cancel(); running.Wait() })

	opts := sandbox.Options{DLRDelay: 200 * time.Millisecond}
	if hooks {
		recv := webhooks.NewReceiver(store, webhooks.ReceiverOptions{Secret: secret})
		recv.Start()
		h := httptest.NewServer(recv)
		t.Cleanup(func() { h.Close(); recv.Stop() })
		opts.WebhookURL, opts.WebhookSecret = h.URL+webhooks.Path, secret
		app := webhooks.NewApplier(store, webhooks.ApplierOptions{Block: 100 * time.Millisecond})
		running.Add(1)
		go func() { defer running.Done(); app.Run(ctx) }() //nolint:errcheck // returns nil when ctx ends
	}
	sb := sandbox.New(opts)
	t.Cleanup(sb.Close)
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	client, err := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: sandbox.KeyPrefix + "hooks"})
	if err != nil {
		t.Fatal(err)
	}
	enq := asynq.NewClientFromRedisClient(rdb)
	w := worker.NewServer(rdb, worker.Deps{Store: store, Provider: client, Enqueuer: enq},
		worker.Options{Concurrency: 10, PollInterval: 20 * time.Millisecond, DLRInterval: time.Second, DLRMaxAge: 10 * time.Minute})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	smsCampaign(t, store, enq, "hk", n)

	var p campaigns.Progress
	var st sandbox.Stats
	testwait.For(t, "delivered and undelivered to reach the sandbox's outcomes", 3*time.Minute, func() bool {
		if p, err = store.Progress(ctx, "hk"); err != nil {
			t.Fatal(err)
		}
		st = sb.Stats()
		return p.Sent == n && st.SMSStatus["pending"] == n/10 &&
			p.Delivered == st.SMSStatus["delivered"] && p.Undelivered == st.SMSStatus["undelivered"]
	})
	if st.Duplicates != 0 || st.Accepted != n || p.DLRExpired != 0 || p.Failed+p.Unknown != 0 {
		t.Fatalf("campaign: sent %d, failed %d, unknown %d, dlr_expired %d; sandbox: accepted %d, duplicates %d",
			p.Sent, p.Failed, p.Unknown, p.DLRExpired, st.Accepted, st.Duplicates)
	}
	if want := int64(n - n/10); p.Delivered+p.Undelivered != want {
		t.Fatalf("%d final reports, want %d", p.Delivered+p.Undelivered, want)
	}
	if hooks {
		// The sandbox counts a webhook once its answer is back, which may be
		// after the applier applied it.
		want := st.SMSStatus["delivered"] + st.SMSStatus["undelivered"]
		testwait.For(t, "the sandbox to count its webhooks", time.Minute, func() bool {
			st = sb.Stats()
			return st.WebhooksSent+st.WebhooksFailed >= want
		})
		if st.WebhooksSent != want || st.WebhooksFailed != 0 {
			t.Errorf("webhooks: %d answered 2xx, %d failed; want %d and 0", st.WebhooksSent, st.WebhooksFailed, want)
		}
	}
	reqs := st.SMSListRequests + st.DLRRequests
	t.Logf("%d messages: %d list requests, %d report reads (%.4f per message); webhooks sent %d, failed %d",
		n, st.SMSListRequests, st.DLRRequests, float64(reqs)/n, st.WebhooksSent, st.WebhooksFailed)
	limit := 0.1
	if hooks {
		limit = 0.02
	}
	if float64(reqs) > limit*n {
		t.Errorf("%d delivery-report requests for %d messages, more than %.2f per message", reqs, n, limit)
	}
}

// The WhatsApp criterion of issue 10, with webhooks on: a 1,000-recipient
// template campaign ends with every recipient delivered, read or failed
// exactly as the sandbox decided, row by row by identifier, from the
// sandbox's signed messageStatus webhooks through the receiver and the
// applier alone: the Logs API fallback is set too late to act, and the
// sandbox counts no log request. (worker's TestWhatsAppStatusesFromLogs is
// the same campaign with webhooks off.)
func TestWhatsAppCampaignWithWebhooks(t *testing.T) {
	t.Parallel()
	const n, id = 1000, "wahk"
	hw := startHooked(t, sandbox.Options{DLRDelay: 100 * time.Millisecond, ReadDelay: 300 * time.Millisecond})
	s := campaigns.Spec{ID: id, Channel: campaigns.ChannelWhatsAppTemplate, From: sandbox.WhatsAppNumber,
		Template: &campaigns.Template{Name: "first_welcome_messsage"}, Recipients: "r.csv"}
	campaign(t, hw.store, hw.enq, s, n, func(string) *campaigns.Content { return &campaigns.Content{Params: []string{"Ada"}} })
	counts := hw.waitStatuses(t, id, n, 2*time.Minute)
	if counts["failed"] != 100 || counts["sent"] != 100 || counts["delivered"] != 200 {
		t.Errorf("sandbox outcomes %v; want 100 failed, 100 sent, 200 delivered, 600 read", counts)
	}
	p, err := hw.store.Progress(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent != n || p.Delivered != 800 || p.Read != 600 || p.Undelivered != 100 || p.DLRExpired != 0 {
		t.Errorf("counters: sent %d delivered %d read %d undelivered %d dlr_expired %d; want 1000 800 600 100 0",
			p.Sent, p.Delivered, p.Read, p.Undelivered, p.DLRExpired)
	}
	hw.checkSandbox(t, n)
}

// hooked is a worker, the receiver and the applier on one private Redis,
// and a sandbox that posts its signed webhooks to the receiver. The Logs
// API fallback is set too late to act: statuses come by webhook only.
type hooked struct {
	store *storage.Store
	enq   *asynq.Client
	sb    *sandbox.Server
}

func startHooked(t *testing.T, so sandbox.Options) *hooked {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	store := storage.New(rdb)
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	t.Cleanup(func() { cancel(); running.Wait() })
	recv := webhooks.NewReceiver(store, webhooks.ReceiverOptions{Secret: secret})
	recv.Start()
	h := httptest.NewServer(recv)
	t.Cleanup(func() { h.Close(); recv.Stop() })
	app := webhooks.NewApplier(store, webhooks.ApplierOptions{Block: 100 * time.Millisecond})
	running.Add(1)
	go func() { defer running.Done(); app.Run(ctx) }() //nolint:errcheck // returns nil when ctx ends
	so.WebhookURL, so.WebhookSecret = h.URL+webhooks.Path, secret
	sb := sandbox.New(so)
	t.Cleanup(sb.Close)
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	client, err := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: sandbox.KeyPrefix + "hooked"})
	if err != nil {
		t.Fatal(err)
	}
	enq := asynq.NewClientFromRedisClient(rdb)
	w := worker.NewServer(rdb, worker.Deps{Store: store, Provider: client, Enqueuer: enq},
		worker.Options{Concurrency: 10, PollInterval: 20 * time.Millisecond, DLRInterval: time.Second, DLRMaxAge: 10 * time.Minute,
			StatusFallbackAfter: 10 * time.Minute})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &hooked{store: store, enq: enq, sb: sb}
}

// waitStatuses waits until every row of campaign id is in the ledger state
// the sandbox's status of its message (found by identifier) calls for, and
// 60% of them read (ReadDelay after delivery); it returns the count of
// each sandbox status. A message the sandbox leaves sent stays accepted.
func (hw *hooked) waitStatuses(t *testing.T, id string, n int, within time.Duration) map[string]int {
	t.Helper()
	want := map[string]byte{"delivered": storage.LedgerDelivered, "read": storage.LedgerRead,
		"failed": storage.LedgerUndelivered, "sent": storage.LedgerAccepted}
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i + 1
	}
	var counts map[string]int
	var differ []string
	testwait.For(t, "every row to reach the sandbox's status by webhook", within, func() bool {
		statuses := hw.sb.Statuses()
		entries, err := hw.store.Ledger(context.Background(), id, rows)
		if err != nil {
			t.Fatal(err)
		}
		counts, differ = map[string]int{}, differ[:0]
		for _, e := range entries {
			status := statuses[campaigns.Identifier(id, e.Row)]
			counts[status]++
			if st, ok := want[status]; !ok || e.State != st {
				differ = append(differ, fmt.Sprintf("row %d: ledger %q, sandbox %q", e.Row, e.State, status))
			}
		}
		return len(entries) == n && len(differ) == 0 && counts["read"] == n*6/10
	})
	return counts
}

// checkSandbox fails unless the sandbox accepted n messages, none twice,
// and was never asked for logs.
func (hw *hooked) checkSandbox(t *testing.T, n int64) {
	t.Helper()
	st := hw.sb.Stats()
	t.Logf("%d messages: %d webhooks sent, %d failed, %d log requests", n, st.WebhooksSent, st.WebhooksFailed, st.LogRequests)
	if st.Duplicates != 0 || st.Accepted != n || st.LogRequests != 0 {
		t.Fatalf("sandbox: accepted %d, duplicates %d, log requests %d; want %d, 0, 0", st.Accepted, st.Duplicates, st.LogRequests, n)
	}
}
