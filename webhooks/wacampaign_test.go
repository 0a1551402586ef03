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
	"github.com/fanoutdev/fanout/webhooks"
	"github.com/fanoutdev/fanout/worker"
)

// A whatsapp_campaign (OneRoute's campaign endpoint) is followed by its
// webhooks alone: the sandbox's messageStatus and campaignCompleted events
// name each message by its identifier, and every row reaches the status
// the sandbox decided with no log request (the fallback is set too late
// to act). worker's TestWhatsAppCampaignWithFaults is the same channel
// with webhooks off.
func TestWhatsAppCampaignChannelWithWebhooks(t *testing.T) {
	t.Parallel()
	const n = 200
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
	go func() { defer running.Done(); app.Run(ctx) }()
	sb := sandbox.New(sandbox.Options{DLRDelay: 100 * time.Millisecond, ReadDelay: 300 * time.Millisecond, CampaignDelay: 50 * time.Millisecond,
		WebhookURL: h.URL + webhooks.Path, WebhookSecret: secret})
	t.Cleanup(sb.Close)
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	client, err := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: sandbox.KeyPrefix + "wacamphooks"})
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

	const id = "wacamphk"
	s := campaigns.Spec{ID: id, Channel: campaigns.ChannelWhatsAppCampaign, From: sandbox.WhatsAppNumber,
		Template: &campaigns.Template{Name: "first_welcome_messsage"}, Recipients: "r.csv"}
	campaign(t, store, enq, s, n, func(string) *campaigns.Content { return &campaigns.Content{Params: []string{"Ada"}} })

	want := map[string]byte{"delivered": storage.LedgerDelivered, "read": storage.LedgerRead,
		"failed": storage.LedgerUndelivered, "sent": storage.LedgerAccepted}
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i + 1
	}
	var counts map[string]int
	var differ []string
	testwait.For(t, "every row to reach the sandbox's status by webhook", time.Minute, func() bool {
		statuses := sb.Statuses()
		entries, err := store.Ledger(ctx, id, rows)
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
	p, err := store.Progress(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent != n || p.Delivered != n*8/10 || p.Read != n*6/10 || p.Undelivered != n/10 {
		t.Errorf("counters: sent %d delivered %d read %d undelivered %d", p.Sent, p.Delivered, p.Read, p.Undelivered)
	}
	if len(p.OneRouteCampaignIDs) != n/50 {
		t.Errorf("%d OneRoute campaign ids, want one per batch (%d)", len(p.OneRouteCampaignIDs), n/50)
	}
	st := sb.Stats()
	t.Logf("%d messages: %d webhooks sent, %d log requests", n, st.WebhooksSent, st.LogRequests)
	if st.Duplicates != 0 || st.Accepted != n || st.LogRequests != 0 {
		t.Fatalf("sandbox: accepted %d, duplicates %d, log requests %d; want %d, 0, 0", st.Accepted, st.Duplicates, st.LogRequests, n)
	}
}
