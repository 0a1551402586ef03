package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
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

// lostCampaigns is a OneRoute client whose first lose campaign requests
// fail ambiguously (written, no answer) without reaching OneRoute: the
// messages are provably absent from the logs.
type lostCampaigns struct {
	*oneroute.Client
	lose  atomic.Int64
	calls atomic.Int64
}

func (l *lostCampaigns) SendCampaign(ctx context.Context, r oneroute.TemplateRequest) (string, error) {
	l.calls.Add(1)
	if l.lose.Add(-1) >= 0 {
		return "", &oneroute.TransportError{Op: "send campaign", Written: true, Err: errors.New("connection reset")}
	}
	return l.Client.SendCampaign(ctx, r)
}

// waCampaignBundle runs real workers against the sandbox with no webhooks:
// every status of a whatsapp_campaign comes from the Logs API.
type waCampaignBundle struct {
	ctx      context.Context
	sb       *sandbox.Server
	store    *storage.Store
	enq      *asynq.Client
	provider *lostCampaigns
	track    *trackBundle
}

func setupWACampaign(t *testing.T) *waCampaignBundle {
	t.Helper()
	srv := redistest.Start(t)
	sb := sandbox.New(sandbox.Options{DLRDelay: 100 * time.Millisecond, ReadDelay: 200 * time.Millisecond, CampaignDelay: 50 * time.Millisecond})
	t.Cleanup(sb.Close)
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	rdb := srv.Client(t)
	client, err := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: sandbox.KeyPrefix + "wacampaign", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b := &waCampaignBundle{ctx: context.Background(), sb: sb, store: storage.New(rdb), enq: asynq.NewClientFromRedisClient(rdb),
		provider: &lostCampaigns{Client: client}}
	b.track = &trackBundle{ctx: b.ctx, sb: sb, store: b.store, enq: b.enq}
	w := NewServer(rdb, Deps{Store: b.store, Provider: b.provider, Enqueuer: b.enq},
		Options{Concurrency: 10, PollInterval: 20 * time.Millisecond, DLRInterval: 200 * time.Millisecond, DLRMaxAge: 3 * time.Second,
			StatusFallbackAfter: time.Second, RequestTimeout: 200 * time.Millisecond, RetryBase: 100 * time.Millisecond})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return b
}

// campaign creates and enqueues a dispatched whatsapp_campaign of n
// recipients (+234803 and the row), in batches of 50.
func (b *waCampaignBundle) campaign(t *testing.T, id string, n int) {
	t.Helper()
	s := campaigns.Spec{ID: id, Channel: campaigns.ChannelWhatsAppCampaign, From: sandbox.WhatsAppNumber,
		Template: &campaigns.Template{Name: "first_welcome_messsage", Parameters: []string{"Ada"}}, Recipients: "r.csv"}
	if _, err := b.store.Create(b.ctx, s); err != nil {
		t.Fatal(err)
	}
	var batches []*campaigns.Batch
	for seq := 0; seq*50 < n; seq++ {
		batch := &campaigns.Batch{Campaign: id, Seq: seq, Channel: s.Channel, From: s.From, Template: s.Template.Name,
			Shared: &campaigns.Content{Params: []string{"Ada"}}}
		for row := seq*50 + 1; row <= min(seq*50+50, n); row++ {
			batch.Items = append(batch.Items, campaigns.Item{Row: row, To: fmt.Sprintf("+234803%07d", row)})
		}
		if _, err := b.store.AddBatch(b.ctx, id, seq, len(batch.Items), batch.Items[len(batch.Items)-1].Row); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, batch)
	}
	if err := b.store.FinishDispatch(b.ctx, id, storage.DispatchCounts{Rows: n}); err != nil {
		t.Fatal(err)
	}
	for _, batch := range batches {
		if err := tasks.Enqueue(b.ctx, b.enq, tasks.Send(batch, tasks.Options{})); err != nil {
			t.Fatal(err)
		}
	}
}

// Done-when, issue 14: a whatsapp_campaign of 1,000 recipients, webhooks
// off and the sandbox failing requests (500s, 429s, and accepted requests
// answered 502/504, reset or left hanging), ends with every recipient final
// exactly as the sandbox decided (row by row, by identifier) from the Logs
// API alone, and no message accepted twice: ambiguous requests are
// reconciled by identifier, never resent.
func TestWhatsAppCampaignWithFaults(t *testing.T) {
	t.Parallel()
	const n = 1000
	b := setupWACampaign(t)
	b.sb.SetFaults(sandbox.Faults{ErrorRate: 0.1, ThrottleRate: 0.05, RetryAfterS: 1, GatewayRate: 0.1, ResetRate: 0.05,
		HangRate: 0.03, HangMS: 3000})
	b.campaign(t, "wacamp", n)
	var p campaigns.Progress
	start := time.Now()
	// Typically 40-60 s: reconciliations wait for stale claims, and the
	// sweep backs off after the injected 500s and 429s.
	testwait.For(t, "campaign wacamp completed", 5*time.Minute, func() bool {
		var err error
		if p, err = b.store.Progress(b.ctx, "wacamp"); err != nil {
			t.Fatal(err)
		}
		return p.State == campaigns.StateCompleted
	})
	st := b.sb.Stats()
	b.sb.SetFaults(sandbox.Faults{})
	counts := b.track.checkRows(t, "wacamp", n)
	want := map[string]int64{"failed": 100, "sent": 100, "delivered": 200, "read": 600}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("sandbox %s: %d messages, want %d", k, counts[k], v)
		}
	}
	if p.Sent != n || p.Delivered != 800 || p.Read != 600 || p.Undelivered != 100 || p.DLRExpired != 100 || p.Unknown != 0 || p.Failed != 0 {
		t.Errorf("counters: sent %d delivered %d read %d undelivered %d dlr_expired %d unknown %d failed %d; want 1000 800 600 100 100 0 0",
			p.Sent, p.Delivered, p.Read, p.Undelivered, p.DLRExpired, p.Unknown, p.Failed)
	}
	if st.Duplicates != 0 || st.Accepted != n {
		t.Fatalf("sandbox accepted %d messages with %d duplicates; want %d and 0", st.Accepted, st.Duplicates, n)
	}
	if st.Faults == 0 || st.Throttled == 0 {
		t.Fatalf("no faults injected (faults %d, throttled %d): the test proves nothing", st.Faults, st.Throttled)
	}
	if len(p.OneRouteCampaignIDs) == 0 {
		t.Error("no OneRoute campaign id recorded")
	}
	t.Logf("%d recipients completed in %s: %d send requests, %d faults, %d throttled, %d log requests, %d OneRoute campaigns recorded",
		n, time.Since(start).Round(time.Second), st.SendRequests, st.Faults, st.Throttled, st.LogRequests, len(p.OneRouteCampaignIDs))
}

// An ambiguous campaign request (accepted, then answered 502/504) is
// reconciled by identifier: every row is found in the logs and accepted,
// and nothing is sent again.
func TestWhatsAppCampaignAmbiguousNotResent(t *testing.T) {
	t.Parallel()
	b := setupWACampaign(t)
	b.sb.SetFaults(sandbox.Faults{GatewayRate: 1})
	b.campaign(t, "waamb", 10)
	testwait.For(t, "the first request", 10*time.Second, func() bool { return b.sb.Stats().SendRequests >= 1 })
	b.sb.SetFaults(sandbox.Faults{})
	p := b.track.completed(t, "waamb")
	st := b.sb.Stats()
	if st.SendRequests != 1 || st.Accepted != 10 || st.Duplicates != 0 {
		t.Fatalf("sandbox: %d send requests, %d accepted, %d duplicates; want 1, 10, 0", st.SendRequests, st.Accepted, st.Duplicates)
	}
	if p.Sent != 10 || p.Unknown != 0 {
		t.Fatalf("sent %d unknown %d; want 10 and 0", p.Sent, p.Unknown)
	}
	b.track.checkRows(t, "waamb", 10)
	if len(p.OneRouteCampaignIDs) != 0 {
		// The answer with the campaign id was lost: none to record.
		t.Errorf("OneRoute campaign ids %v recorded from a lost answer", p.OneRouteCampaignIDs)
	}
}

// An ambiguous request that never reached OneRoute leaves no log row: the
// reconciliation proves the rows absent and sends them again, once.
func TestWhatsAppCampaignAbsentResent(t *testing.T) {
	t.Parallel()
	b := setupWACampaign(t)
	b.provider.lose.Store(1)
	b.campaign(t, "waabs", 10)
	p := b.track.completed(t, "waabs")
	st := b.sb.Stats()
	if got := b.provider.calls.Load(); got != 2 {
		t.Errorf("%d campaign requests, want 2 (the lost one, then the resend)", got)
	}
	if st.SendRequests != 1 || st.Accepted != 10 || st.Duplicates != 0 {
		t.Fatalf("sandbox: %d send requests, %d accepted, %d duplicates; want 1, 10, 0", st.SendRequests, st.Accepted, st.Duplicates)
	}
	if p.Sent != 10 || p.Unknown != 0 || len(p.OneRouteCampaignIDs) != 1 {
		t.Fatalf("sent %d unknown %d OneRoute campaigns %v; want 10, 0 and one", p.Sent, p.Unknown, p.OneRouteCampaignIDs)
	}
	b.track.checkRows(t, "waabs", 10)
}

// logsFunc is a LogReader from a function.
type logsFunc func(f oneroute.LogFilter) ([]oneroute.LogEntry, error)

func (l logsFunc) FetchLogs(ctx context.Context, f oneroute.LogFilter, p oneroute.Page) ([]oneroute.LogEntry, *oneroute.Meta, error) {
	rows, err := l(f)
	return rows, nil, err
}

// lookupIdentifier trusts only what proves a send: a log row named by the
// identifier since the request (found), or a filtered answer without one
// (absent). An older row is an earlier send's; an answer that ignored the
// filter proves nothing; a failed lookup is tried again.
func TestLookupIdentifier(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	const ident = "fanout:c:7"
	mine, other := ident, "fanout:c:8"
	row := func(id *string, at time.Time) oneroute.LogEntry {
		return oneroute.LogEntry{Identifier: id, CreatedAt: at}
	}
	for _, tc := range []struct {
		name string
		rows []oneroute.LogEntry
		err  error
		want verdict
	}{
		{"found", []oneroute.LogEntry{row(&mine, since.Add(time.Second))}, nil, found},
		{"found without a time", []oneroute.LogEntry{row(&mine, time.Time{})}, nil, found},
		{"absent", nil, nil, absent},
		{"only an earlier send", []oneroute.LogEntry{row(&mine, since.Add(-time.Hour))}, nil, absent},
		{"filter ignored", []oneroute.LogEntry{row(&other, since)}, nil, inconclusive},
		{"filter ignored, no identifiers", []oneroute.LogEntry{row(nil, since)}, nil, inconclusive},
		{"server error", nil, &oneroute.APIError{Op: "fetch logs", Status: 500, Message: "Internal server error"}, retryLookup},
		{"throttled", nil, &oneroute.APIError{Op: "fetch logs", Status: 429, Message: "Too many requests"}, retryLookup},
		{"refused", nil, &oneroute.APIError{Op: "fetch logs", Status: 400, Message: "bad"}, inconclusive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := logsFunc(func(f oneroute.LogFilter) ([]oneroute.LogEntry, error) {
				if f.Identifier != ident || f.Medium != "WHATSAPP" {
					t.Errorf("filter %+v", f)
				}
				return tc.rows, tc.err
			})
			id, v := lookupIdentifier(context.Background(), r, ident, since)
			if v != tc.want {
				t.Fatalf("verdict %d, want %d", v, tc.want)
			}
			if (v == found) != (id == ident) {
				t.Fatalf("provider id %q with verdict %d", id, v)
			}
		})
	}
}
