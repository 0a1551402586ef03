package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// fakeProvider answers provider calls from per-method functions and records
// every message it was asked to send.
type fakeProvider struct {
	mu       sync.Mutex
	sent     map[string]int // recipient -> times sent
	sms      func(to []string, text string) ([]oneroute.Result, error)
	template func(to []string) ([]oneroute.Result, error)
	list     func() ([]oneroute.SMSMessage, error)
	dlr      func(id string) (oneroute.DLR, error)
}

func (f *fakeProvider) count(to []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent == nil {
		f.sent = map[string]int{}
	}
	for _, t := range to {
		f.sent[t]++
	}
}

func (f *fakeProvider) times(to string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent[to]
}

func ok(to []string) []oneroute.Result {
	out := make([]oneroute.Result, len(to))
	for i, t := range to {
		out[i] = oneroute.Result{Status: "success", Response: "id-" + t}
	}
	return out
}

func (f *fakeProvider) SendSMS(ctx context.Context, ch string, r oneroute.SMSRequest) ([]oneroute.Result, error) {
	res, err := f.sms(r.Recipients, r.Message)
	if err == nil || oneroute.Classify(err) == oneroute.Ambiguous {
		f.count(r.Recipients)
	}
	return res, err
}

func (f *fakeProvider) SendTemplate(ctx context.Context, r oneroute.TemplateRequest) ([]oneroute.Result, error) {
	to := make([]string, len(r.Messages))
	for i, m := range r.Messages {
		to[i] = m.To
	}
	res, err := f.template(to)
	if err == nil || oneroute.Classify(err) == oneroute.Ambiguous {
		f.count(to)
	}
	return res, err
}

func (f *fakeProvider) SendEmail(ctx context.Context, ch string, r oneroute.EmailRequest) ([]oneroute.Result, error) {
	f.count(r.Recipients)
	return ok(r.Recipients), nil
}

func (f *fakeProvider) GetSMSDLR(ctx context.Context, id string) (oneroute.DLR, error) {
	if f.dlr == nil {
		return oneroute.DLR{Conversation: oneroute.SMSMessage{ID: id, Status: oneroute.DLRDelivered}}, nil
	}
	return f.dlr(id)
}

func (f *fakeProvider) FetchSMSMessagesTo(ctx context.Context, ch, to string, p oneroute.Page) ([]oneroute.SMSMessage, *oneroute.Meta, error) {
	if f.list == nil {
		return nil, nil, &oneroute.APIError{Status: 503, Message: "no list"}
	}
	msgs, err := f.list()
	return msgs, nil, err
}

// fakeEnqueuer keeps follow-up tasks instead of enqueuing them.
type fakeEnqueuer struct {
	mu    sync.Mutex
	tasks []*asynq.Task
}

func (e *fakeEnqueuer) EnqueueContext(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tasks = append(e.tasks, t)
	return &asynq.TaskInfo{}, nil
}

func (e *fakeEnqueuer) take(typ string) []*asynq.Task {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out, rest []*asynq.Task
	for _, t := range e.tasks {
		if t.Type() == typ {
			out = append(out, t)
		} else {
			rest = append(rest, t)
		}
	}
	e.tasks = rest
	return out
}

// blockRecorder is a limiter that allows everything at once, counts the
// calls and records Blocks.
type blockRecorder struct {
	mu       sync.Mutex
	blocks   map[string]time.Duration
	allows   int
	reserves []int // n of each Reserve
}

func (b *blockRecorder) Allow(ctx context.Context, key string, l ratelimit.Limit, n int) (ratelimit.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allows++
	return ratelimit.Result{Allowed: n}, nil
}

func (b *blockRecorder) Reserve(ctx context.Context, key string, l ratelimit.Limit, n int, ahead time.Duration) (ratelimit.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reserves = append(b.reserves, n)
	return ratelimit.Result{Allowed: n}, nil
}

func (b *blockRecorder) Block(ctx context.Context, key string, d time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.blocks == nil {
		b.blocks = map[string]time.Duration{}
	}
	b.blocks[key] = d
	return nil
}

type testBundle struct {
	ctx   context.Context
	store *storage.Store
	prov  *fakeProvider
	enq   *fakeEnqueuer
	lim   *blockRecorder
	mux   *asynq.ServeMux
	opts  Options
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	srv := redistest.Start(t)
	b := &testBundle{ctx: context.Background(), store: storage.New(srv.Client(t)),
		prov: &fakeProvider{}, enq: &fakeEnqueuer{}, lim: &blockRecorder{}}
	b.prov.sms = func(to []string, _ string) ([]oneroute.Result, error) { return ok(to), nil }
	b.prov.template = func(to []string) ([]oneroute.Result, error) { return ok(to), nil }
	b.opts = Options{MaxAttempts: 3, RequestTimeout: time.Second, PerCallConcurrency: 4}
	b.mux = NewMux(Deps{Store: b.store, Provider: b.prov, Enqueuer: b.enq, Limiter: b.lim}, b.opts)
	return b
}

// campaign creates a fully dispatched campaign and returns its first batch.
func (b *testBundle) campaign(t *testing.T, spec campaigns.Spec, to ...string) *campaigns.Batch {
	t.Helper()
	if _, err := b.store.Create(b.ctx, spec); err != nil {
		t.Fatal(err)
	}
	batch := &campaigns.Batch{Campaign: spec.ID, Channel: spec.Channel, ChannelID: spec.ChannelID, From: spec.From, AtLeastOnce: spec.AtLeastOnce}
	if spec.Template != nil {
		batch.Template = spec.Template.Name
	}
	for i, addr := range to {
		batch.Items = append(batch.Items, campaigns.Item{Row: i + 1, To: addr, Content: &campaigns.Content{Text: "hi " + addr, Params: []string{addr}}})
	}
	if _, err := b.store.AddBatch(b.ctx, spec.ID, 0, len(to), len(to)); err != nil {
		t.Fatal(err)
	}
	if err := b.store.FinishDispatch(b.ctx, spec.ID, storage.DispatchCounts{Rows: len(to)}); err != nil {
		t.Fatal(err)
	}
	return batch
}

func (b *testBundle) run(t *testing.T, batch *campaigns.Batch) error {
	t.Helper()
	return b.mux.ProcessTask(b.ctx, asynq.NewTask(tasks.SendType(batch.Channel), tasks.Encode(batch)))
}

func (b *testBundle) progress(t *testing.T, id string) campaigns.Progress {
	t.Helper()
	p, err := b.store.Progress(b.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// children decodes the follow-up batches the handler scheduled.
func (b *testBundle) children(t *testing.T, typ string) []*campaigns.Batch {
	t.Helper()
	var out []*campaigns.Batch
	for _, task := range b.enq.take(typ) {
		var c campaigns.Batch
		if err := tasks.Decode(task.Payload(), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, &c)
	}
	return out
}

// childRecipients counts the recipients of the follow-up batches the
// handler scheduled.
func (b *testBundle) childRecipients(t *testing.T, typ string) int {
	t.Helper()
	n := 0
	for _, k := range b.children(t, typ) {
		n += len(k.Items)
	}
	return n
}

// templateCalls answers template sends with answer and returns the number
// of recipients of each call so far.
func (b *testBundle) templateCalls(answer func(to []string) ([]oneroute.Result, error)) func() []int {
	var mu sync.Mutex
	var calls []int
	b.prov.template = func(to []string) ([]oneroute.Result, error) {
		mu.Lock()
		calls = append(calls, len(to))
		mu.Unlock()
		return answer(to)
	}
	return func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls)
	}
}

// phones returns n distinct Nigerian mobile numbers.
func phones(n int) []string {
	to := make([]string, n)
	for i := range to {
		to[i] = fmt.Sprintf("+23480300%05d", i)
	}
	return to
}

func spec(id string, ch campaigns.Channel) campaigns.Spec {
	s := campaigns.Spec{ID: id, Channel: ch, ChannelID: "chan", From: "2348000000001", Message: "hi {{.x}}", Recipients: "r.csv"}
	if ch == campaigns.ChannelWhatsAppTemplate {
		s.Message = ""
		s.Template = &campaigns.Template{Name: "tpl", Parameters: []string{"{{.x}}"}}
	}
	return s
}

var errTimeoutAfterWrite = &oneroute.TransportError{Op: "send", Written: true, Err: errors.New("i/o timeout")}

// Decide maps every error class to one action.
func TestDecide(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want Action
	}{
		{"ok", nil, Succeed},
		{"validation", &oneroute.APIError{Status: 400, Message: `"message" is required`}, FailPermanently},
		{"not found", &oneroute.APIError{Status: 404, Message: "Channel not found"}, FailPermanently},
		{"template rejected", &oneroute.APIError{Status: 400, Message: "Template promo not found or not approved"}, PauseCampaign},
		{"unauthorized", &oneroute.APIError{Status: 401, Message: "Invalid API Key"}, PauseCampaign},
		{"throttled", &oneroute.APIError{Status: 429, Message: "Too many requests", RetryAfter: time.Second}, Reschedule},
		{"server error", &oneroute.APIError{Status: 500, Message: "Internal server error"}, RetryWithBackoff},
		// A gateway's 502/503/504 may hide a request OneRoute processed.
		{"bad gateway", &oneroute.APIError{Status: 502, Message: "Bad Gateway"}, Reconcile},
		{"unavailable", &oneroute.APIError{Status: 503, Message: "Service Unavailable"}, Reconcile},
		{"gateway timeout", &oneroute.APIError{Status: 504, Message: "Gateway Timeout"}, Reconcile},
		{"refused before write", &oneroute.TransportError{Op: "send", Err: errors.New("connection refused")}, RetryWithBackoff},
		{"timeout after write", errTimeoutAfterWrite, Reconcile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Decide(tc.err); got != tc.want {
				t.Errorf("Decide(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// A batch whose call partly fails records each recipient on its own; only
// the temporarily failed ones travel on in a smaller follow-up task, and
// nobody accepted is sent again.
func TestPartialFailureRetriesOnlyTheFailed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("partial", campaigns.ChannelSMS)
	batch := b.campaign(t, s, "+2348030000001", "+2348030000002", "+2348030000003", "+2348030000004")
	var mu sync.Mutex
	calls := map[string]int{}
	b.prov.sms = func(to []string, _ string) ([]oneroute.Result, error) {
		mu.Lock()
		calls[to[0]]++
		n := calls[to[0]]
		mu.Unlock()
		switch {
		case to[0] == "+2348030000002" && n == 1:
			return nil, &oneroute.APIError{Status: 500, Message: "Internal server error"}
		case to[0] == "+2348030000003":
			return []oneroute.Result{{Status: "failed", Response: "Invalid number"}}, nil
		}
		return ok(to), nil
	}
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	kids := b.children(t, tasks.TypeSMSSend)
	if len(kids) != 1 || len(kids[0].Items) != 1 || kids[0].Items[0].To != "+2348030000002" || kids[0].Failures != 1 {
		t.Fatalf("follow-ups: %+v", kids)
	}
	// The same task runs again (asynq is at-least-once): nothing is resent.
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	if err := b.run(t, kids[0]); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"+2348030000001", "+2348030000002", "+2348030000004"} {
		if n := b.prov.times(to); n != 1 {
			t.Errorf("%s accepted %d times, want 1", to, n)
		}
	}
	p := b.progress(t, s.ID)
	if p.Sent != 3 || p.Failed != 1 || p.Pending != 0 {
		t.Fatalf("sent %d failed %d pending %d, want 3 1 0", p.Sent, p.Failed, p.Pending)
	}
	// Every accepted SMS is followed to its delivery report: it is in the
	// campaign's provider-id index, and every run that accepted or found
	// accepted rows scheduled the campaign's one sweep.
	rows, err := b.store.RowsOf(b.ctx, s.ID, []string{"id-+2348030000001", "id-+2348030000002", "id-+2348030000003", "id-+2348030000004"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{1, 2, -1, 4}, rows); diff != "" {
		t.Fatalf("indexed rows (-want +got):\n%s", diff)
	}
	ids := map[string]bool{}
	for _, task := range b.enq.take(tasks.TypeDLRSweep) {
		var sw tasks.DLRSweep
		if err := tasks.Decode(task.Payload(), &sw); err != nil {
			t.Fatal(err)
		}
		ids[sw.ID()] = true
	}
	if diff := cmp.Diff(map[string]bool{"partial:dlr:sweep": true}, ids); diff != "" {
		t.Fatalf("sweeps (-want +got):\n%s", diff)
	}
}

// An ambiguous WhatsApp send is recorded unknown and never resent; with
// at_least_once it is retried.
func TestAmbiguousWithoutLookupIsUnknown(t *testing.T) {
	t.Parallel()
	for _, alo := range []bool{false, true} {
		t.Run(fmt.Sprintf("at_least_once=%v", alo), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			s := spec("amb", campaigns.ChannelWhatsAppTemplate)
			s.AtLeastOnce = alo
			batch := b.campaign(t, s, "+2348030000001", "+2348030000002")
			b.prov.template = func(to []string) ([]oneroute.Result, error) { return nil, errTimeoutAfterWrite }
			if err := b.run(t, batch); err != nil {
				t.Fatal(err)
			}
			p := b.progress(t, s.ID)
			kids := b.children(t, tasks.TypeWhatsAppTemplate)
			if !alo && (p.Unknown != 2 || len(kids) != 0) {
				t.Fatalf("unknown %d, follow-ups %d; want 2 and 0", p.Unknown, len(kids))
			}
			if alo && (p.Unknown != 0 || len(kids) != 1 || len(kids[0].Items) != 2) {
				t.Fatalf("unknown %d, follow-ups %+v; want 0 and one with both", p.Unknown, kids)
			}
		})
	}
}

// An ambiguous SMS keeps its claim and is reconciled through the channel's
// message list: found means accepted (no resend), and a found message
// already final gives its delivery report at once; provably absent means
// safe to send.
func TestAmbiguousSMSIsReconciledBeforeResend(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("recon", campaigns.ChannelSMS)
	batch := b.campaign(t, s, "+2348030000001", "+2348030000002")
	var mu sync.Mutex
	var accepted []oneroute.SMSMessage
	b.prov.sms = func(to []string, _ string) ([]oneroute.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if to[0] == "+2348030000001" {
			accepted = append(accepted, oneroute.SMSMessage{ID: "found-1", To: "2348030000001", Message: "hi +2348030000001", CreatedAt: time.Now(), Status: oneroute.DLRDelivered},
				// Another campaign's message to the same number is not ours.
				oneroute.SMSMessage{ID: "other", To: "2348030000002", Message: "another text", CreatedAt: time.Now()})
		}
		return nil, errTimeoutAfterWrite
	}
	b.prov.list = func() ([]oneroute.SMSMessage, error) {
		mu.Lock()
		defer mu.Unlock()
		return append([]oneroute.SMSMessage(nil), accepted...), nil
	}
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	kids := b.children(t, tasks.TypeSMSSend)
	if len(kids) != 1 || len(kids[0].Items) != 2 {
		t.Fatalf("follow-ups: %+v, want one with both recipients", kids)
	}
	if p := b.progress(t, s.ID); p.Done() != 0 {
		t.Fatalf("done %d before reconciliation, want 0", p.Done())
	}
	// The follow-up runs once the claims are stale.
	b.prov.sms = func(to []string, _ string) ([]oneroute.Result, error) { return ok(to), nil }
	bs := newBatchSender(Deps{Store: b.store, Provider: b.prov, Enqueuer: b.enq}, b.opts.withDefaults(), nil)
	bs.opts.RequestTimeout = -5 * time.Second // staleAfter() == 0: every claim is stale now
	mux := asynq.NewServeMux()
	mux.Handle(tasks.TypeSMSSend, &SMSHandler{bs})
	if err := mux.ProcessTask(b.ctx, asynq.NewTask(tasks.TypeSMSSend, tasks.Encode(kids[0]))); err != nil {
		t.Fatal(err)
	}
	p := b.progress(t, s.ID)
	if p.Sent != 2 || p.Unknown != 0 || p.Delivered != 1 {
		t.Fatalf("sent %d unknown %d delivered %d, want 2 0 1", p.Sent, p.Unknown, p.Delivered)
	}
	e, _ := b.store.Ledger(b.ctx, s.ID, []int{1, 2})
	if diff := cmp.Diff([]string{"dfound-1", "aid-+2348030000002"}, []string{string(e[0].State) + e[0].Value, string(e[1].State) + e[1].Value}); diff != "" {
		t.Fatalf("ledger (-want +got):\n%s", diff)
	}
	// Recipient 1 went out once: its lost answer was found in the list.
	if n := b.prov.times("+2348030000001"); n != 1 {
		t.Errorf("recipient 1 sent %d times, want 1", n)
	}
}

// A refused API key pauses the campaign, releases the claims and schedules
// the batch to come back; nothing is counted failed.
func TestUnauthorizedPausesTheCampaign(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("auth", campaigns.ChannelWhatsAppTemplate)
	batch := b.campaign(t, s, "+2348030000001")
	b.prov.template = func(to []string) ([]oneroute.Result, error) {
		return nil, &oneroute.APIError{Status: 401, Message: "Invalid API Key"}
	}
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	p := b.progress(t, s.ID)
	if p.State != campaigns.StatePaused || !strings.Contains(p.Reason, "Invalid API Key") || p.Failed != 0 {
		t.Fatalf("state %s reason %q failed %d", p.State, p.Reason, p.Failed)
	}
	if kids := b.children(t, tasks.TypeWhatsAppTemplate); len(kids) != 1 {
		t.Fatalf("follow-ups %d, want 1", len(kids))
	}
	// While paused, a task bounces without claiming and without a failure.
	err := b.run(t, batch)
	if err == nil || IsFailure(err) {
		t.Fatalf("paused run: %v (IsFailure %v), want a not-a-failure error", err, IsFailure(err))
	}
}

// A provider 429 reschedules after Retry-After without a failure, and slows
// the shared limiter for every worker.
func TestThrottleIsSharedAndNotAFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("throttle", campaigns.ChannelWhatsAppTemplate)
	batch := b.campaign(t, s, "+2348030000001")
	b.prov.template = func(to []string) ([]oneroute.Result, error) {
		return nil, &oneroute.APIError{Status: 429, Message: "Too many requests", RetryAfter: 3 * time.Second}
	}
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	kids := b.children(t, tasks.TypeWhatsAppTemplate)
	if len(kids) != 1 || kids[0].Failures != 0 {
		t.Fatalf("follow-ups %+v, want one with no failure counted", kids)
	}
	if d := b.lim.blocks[batch.Sender()]; d != 3*time.Second {
		t.Fatalf("limiter blocked %q for %s, want 3s", batch.Sender(), d)
	}
}

// A sender with no limit asks the limiter once per batch (for the shared
// 429 block), never per message, and its batched call is not split.
func TestUnlimitedSenderAsksOncePerBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("unlimited", campaigns.ChannelWhatsAppTemplate)
	batch := b.campaign(t, s, phones(30)...)
	calls := b.templateCalls(func(to []string) ([]oneroute.Result, error) { return ok(to), nil })
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{30}, calls()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if b.lim.allows != 1 || len(b.lim.reserves) != 0 {
		t.Errorf("limiter calls: %d Allow, Reserve %v; want one Allow", b.lim.allows, b.lim.reserves)
	}
}

// With a per-second limit, a batched call never carries more than the
// burst: it is split into requests of at most burst - margin recipients,
// each reserved on its own; after a 429 the rest is not sent and the sender
// is blocked for every worker.
func TestLimitedBatchIsSplitAndStopsAfter429(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		throttle  bool
		wantCalls []int
		wantKids  int
	}{
		{name: "AllSent", wantCalls: []int{10, 10, 5}},
		{name: "ThrottledFirst", throttle: true, wantCalls: []int{10}, wantKids: 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			s := spec("split-"+tc.name, campaigns.ChannelWhatsAppTemplate)
			batch := b.campaign(t, s, phones(25)...)
			batch.Rate = &campaigns.Rate{PerSecond: 200, Burst: 20}
			calls := b.templateCalls(func(to []string) ([]oneroute.Result, error) {
				if tc.throttle {
					return nil, &oneroute.APIError{Status: 429, Message: "Too many requests", RetryAfter: 3 * time.Second}
				}
				return ok(to), nil
			})
			if err := b.run(t, batch); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantCalls, calls()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCalls, b.lim.reserves); diff != "" {
				t.Errorf("reservations (-want +got):\n%s", diff)
			}
			if got := b.childRecipients(t, tasks.TypeWhatsAppTemplate); got != tc.wantKids {
				t.Errorf("follow-ups carry %d recipients, want %d", got, tc.wantKids)
			}
			if tc.throttle && b.lim.blocks[batch.Sender()] != 3*time.Second {
				t.Errorf("blocks %v, want %s for 3s", b.lim.blocks, batch.Sender())
			}
		})
	}
}

// Temporary failures stop after MaxAttempts and the recipient is recorded
// failed with the reason: nothing is left pending forever.
func TestTemporaryFailuresGiveUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("giveup", campaigns.ChannelWhatsAppTemplate)
	batch := b.campaign(t, s, "+2348030000001")
	b.prov.template = func(to []string) ([]oneroute.Result, error) {
		return nil, &oneroute.APIError{Status: 500, Message: "boom"}
	}
	for i := 0; i < b.opts.MaxAttempts; i++ {
		if err := b.run(t, batch); err != nil {
			t.Fatal(err)
		}
		kids := b.children(t, tasks.TypeWhatsAppTemplate)
		if i < b.opts.MaxAttempts-1 {
			if len(kids) != 1 {
				t.Fatalf("attempt %d: %d follow-ups", i+1, len(kids))
			}
			batch = kids[0]
		} else if len(kids) != 0 {
			t.Fatalf("last attempt still scheduled a follow-up")
		}
	}
	p := b.progress(t, s.ID)
	if p.Failed != 1 || p.State != campaigns.StateCompleted {
		t.Fatalf("failed %d state %s, want 1 completed", p.Failed, p.State)
	}
	e, _ := b.store.Ledger(b.ctx, s.ID, []int{1})
	if !strings.Contains(e[0].Value, "gave up after 3 attempts") {
		t.Fatalf("ledger reason %q", e[0].Value)
	}
}

// A cancelled campaign skips its remaining recipients.
func TestCancelledCampaignSkips(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("cancel", campaigns.ChannelSMS)
	batch := b.campaign(t, s, "+2348030000001", "+2348030000002")
	if _, err := b.store.Cancel(b.ctx, s.ID, "operator"); err != nil {
		t.Fatal(err)
	}
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	if p := b.progress(t, s.ID); p.Skipped != 2 || b.prov.times("+2348030000001") != 0 {
		t.Fatalf("skipped %d, sent %d", p.Skipped, b.prov.times("+2348030000001"))
	}
}

// Delivery reports become final once, and unfinished ones are polled again
// until DLRMaxAge, then counted dlr_expired. Workers enqueue dlr:sweep
// now; this protects the dlr:poll tasks still queued from before.
func TestDLRPolling(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("dlrpoll", campaigns.ChannelSMS)
	batch := b.campaign(t, s, "+2348030000001", "+2348030000002", "+2348030000009")
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	if sweeps := b.enq.take(tasks.TypeDLRSweep); len(sweeps) != 1 {
		t.Fatalf("%d sweeps, want 1", len(sweeps))
	}
	var items []tasks.DLRItem
	for _, it := range batch.Items {
		items = append(items, tasks.DLRItem{Row: it.Row, ID: "id-" + it.To})
	}
	old := &tasks.DLRPoll{Campaign: s.ID, Key: "b0-x", Since: time.Now().Unix(), Items: items}
	if _, err := b.enq.EnqueueContext(b.ctx, tasks.Poll(old, tasks.Options{}).Task); err != nil {
		t.Fatal(err)
	}
	b.prov.dlr = func(id string) (oneroute.DLR, error) {
		st := map[string]string{"id-+2348030000001": "delivered", "id-+2348030000002": "undelivered"}[id]
		if st == "" {
			st = "pending"
		}
		return oneroute.DLR{Conversation: oneroute.SMSMessage{ID: id, Status: st}}, nil
	}
	polls := b.enq.take(tasks.TypeDLRPoll)
	if len(polls) != 1 {
		t.Fatalf("%d polls", len(polls))
	}
	if err := b.mux.ProcessTask(b.ctx, polls[0]); err != nil {
		t.Fatal(err)
	}
	next := b.enq.take(tasks.TypeDLRPoll)
	if len(next) != 1 {
		t.Fatalf("%d follow-up polls, want 1 for the pending one", len(next))
	}
	var p tasks.DLRPoll
	if err := tasks.Decode(next[0].Payload(), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 || p.Attempt != 1 {
		t.Fatalf("follow-up poll %+v", p)
	}
	p.Since = time.Now().Add(-48 * time.Hour).Unix() // older than DLRMaxAge
	if err := b.mux.ProcessTask(b.ctx, asynq.NewTask(tasks.TypeDLRPoll, tasks.Encode(&p))); err != nil {
		t.Fatal(err)
	}
	got := b.progress(t, s.ID)
	if got.Delivered != 1 || got.Undelivered != 1 || got.DLRExpired != 1 || got.State != campaigns.StateCompleted {
		t.Fatalf("got %+v", got)
	}
}

// The client and the handler agree end to end: a real HTTP timeout after the
// request was written is classified ambiguous.
func TestHTTPTimeoutAfterWriteIsAmbiguous(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-release
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // http.ErrServerClosed at cleanup
	t.Cleanup(func() { close(release); srv.Close() })
	c, _ := oneroute.New(oneroute.Options{BaseURL: "http://" + ln.Addr().String(), APIKey: "test_x", Timeout: 200 * time.Millisecond})
	_, err = c.SendSMS(context.Background(), "ch", oneroute.SMSRequest{Message: "hi", Recipients: []string{"+2348030000001"}})
	if Decide(err) != Reconcile {
		t.Fatalf("Decide(%v) = %v, want reconcile", err, Decide(err))
	}
}

// Past the campaign's deadline nothing more is sent: pending recipients are
// skipped as expired.
func TestExpiredCampaignSendsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("expired", campaigns.ChannelWhatsAppTemplate)
	batch := b.campaign(t, s, "+2348030000001", "+2348030000002")
	batch.ExpiresAt = time.Now().Add(-time.Minute).Unix()
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	p := b.progress(t, s.ID)
	if p.Skipped != 2 || p.State != campaigns.StateCompleted || b.prov.times("+2348030000001") != 0 {
		t.Fatalf("skipped %d state %s sent %d", p.Skipped, p.State, b.prov.times("+2348030000001"))
	}
	e, _ := b.store.Ledger(b.ctx, s.ID, []int{1})
	if e[0].State != storage.LedgerSkipped || e[0].Value != "expired" {
		t.Fatalf("ledger %c%s", e[0].State, e[0].Value)
	}
}

// gateLimiter holds the first Allow until release is closed.
type gateLimiter struct {
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gateLimiter) Allow(ctx context.Context, key string, l ratelimit.Limit, n int) (ratelimit.Result, error) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
	return ratelimit.Result{Allowed: n}, nil
}

func (g *gateLimiter) Reserve(ctx context.Context, key string, l ratelimit.Limit, n int, ahead time.Duration) (ratelimit.Result, error) {
	return g.Allow(ctx, key, l, n)
}

func (g *gateLimiter) Block(context.Context, string, time.Duration) error { return nil }

// An attempt that waits long (here in the rate limiter) before its request
// loses its claim to a newer attempt, which sends; the first attempt's stamp
// then fails and it sends nothing. One send, never two.
func TestSlowAttemptLosesItsClaimAndDoesNotSend(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("slow", campaigns.ChannelWhatsAppTemplate)
	batch := b.campaign(t, s, "+2348030000001")
	gate := &gateLimiter{entered: make(chan struct{}), release: make(chan struct{})}
	slow := newBatchSender(Deps{Store: b.store, Provider: b.prov, Enqueuer: b.enq, Limiter: gate}, b.opts.withDefaults(), nil)
	slow.opts.RateLimit = campaigns.Rate{PerSecond: 1}
	done := make(chan error, 1)
	go func() { done <- slow.process(b.ctx, batch, (&WhatsAppHandler{slow}).send) }()
	<-gate.entered
	// A second execution, with every claim already stale to it.
	fast := newBatchSender(Deps{Store: b.store, Provider: b.prov, Enqueuer: b.enq}, b.opts.withDefaults(), nil)
	fast.opts.RequestTimeout = -5 * time.Second
	if err := fast.process(b.ctx, batch, (&WhatsAppHandler{fast}).send); err != nil {
		t.Fatal(err)
	}
	close(gate.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := b.prov.times("+2348030000001"); n != 1 {
		t.Fatalf("sent %d times, want 1", n)
	}
	if p := b.progress(t, s.ID); p.Sent != 1 || p.Pending != 0 {
		t.Fatalf("sent %d pending %d", p.Sent, p.Pending)
	}
}

// Lookups that keep failing count as attempts: after MaxAttempts the
// recipient ends unknown instead of following up forever.
func TestFailingLookupsEndInUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("lookupfail", campaigns.ChannelSMS)
	batch := b.campaign(t, s, "+2348030000001")
	b.prov.sms = func(to []string, _ string) ([]oneroute.Result, error) { return nil, errTimeoutAfterWrite }
	bs := newBatchSender(Deps{Store: b.store, Provider: b.prov, Enqueuer: b.enq}, b.opts.withDefaults(), nil)
	bs.opts.RequestTimeout = -5 * time.Second // every claim is stale at once
	for i := 0; i < 10 && batch != nil; i++ {
		if err := bs.process(b.ctx, batch, (&SMSHandler{bs}).send); err != nil {
			t.Fatal(err)
		}
		batch = nil
		if kids := b.children(t, tasks.TypeSMSSend); len(kids) == 1 {
			batch = kids[0]
		}
	}
	if batch != nil {
		t.Fatalf("still following up after 10 rounds: %+v", batch)
	}
	if p := b.progress(t, s.ID); p.Unknown != 1 || b.prov.times("+2348030000001") != 1 {
		t.Fatalf("unknown %d sends %d, want 1 and 1", p.Unknown, b.prov.times("+2348030000001"))
	}
}

// slowEmail accepts every email after a delay that ignores cancellation, as
// a request already on the wire does.
type slowEmail struct {
	fakeProvider
	delay time.Duration
}

func (f *slowEmail) SendEmail(ctx context.Context, ch string, r oneroute.EmailRequest) ([]oneroute.Result, error) {
	time.Sleep(f.delay)
	f.count(r.Recipients)
	return ok(r.Recipients), nil
}

// Stopping a worker mid-batch records every send it made before Stop
// returns, starts no new request, and leaves the rest pending for another
// worker: the ledger matches what the provider accepted.
func TestStopRecordsEverySend(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	store := storage.New(rdb)
	prov := &slowEmail{delay: 700 * time.Millisecond}
	s := campaigns.Spec{ID: "stop", Channel: campaigns.ChannelEmail, ChannelID: "ch", Message: "m {{.x}}", Subject: "s", Recipients: "r.csv"}
	if _, err := store.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	batch := &campaigns.Batch{Campaign: s.ID, Channel: s.Channel, ChannelID: "ch"}
	var to []string
	for i := 1; i <= 6; i++ {
		addr := fmt.Sprintf("u%d@example.com", i)
		to = append(to, addr)
		batch.Items = append(batch.Items, campaigns.Item{Row: i, To: addr, Content: &campaigns.Content{Text: "m", Subject: "s"}})
	}
	if _, err := store.AddBatch(context.Background(), s.ID, 0, 6, 6); err != nil {
		t.Fatal(err)
	}
	if err := store.FinishDispatch(context.Background(), s.ID, storage.DispatchCounts{Rows: 6}); err != nil {
		t.Fatal(err)
	}
	enq := asynq.NewClientFromRedisClient(rdb)
	w := NewServer(rdb, Deps{Store: store, Provider: prov, Enqueuer: enq}, Options{
		Concurrency: 1, PerCallConcurrency: 2, RequestTimeout: 2 * time.Second, ShutdownTimeout: time.Second, PollInterval: 50 * time.Millisecond})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := enq.Enqueue(asynq.NewTask(tasks.TypeEmailSend, tasks.Encode(batch), asynq.Queue(tasks.QueueEmail), asynq.TaskID("stop:b0"))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for prov.times("u1@example.com") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	w.Stop()
	rdb.Close() // as cmd/fanout does right after Stop
	rdb2 := srv.Client(t)
	entries, _ := storage.New(rdb2).Ledger(context.Background(), s.ID, []int{1, 2, 3, 4, 5, 6})
	sentN := 0
	for _, addr := range to {
		if prov.times(addr) > 0 {
			sentN++
		}
	}
	if sentN == 0 || sentN == 6 {
		t.Fatalf("%d of 6 sent: the stop should come mid-batch and start no new request", sentN)
	}
	for i, e := range entries {
		sent := prov.times(to[i]) > 0
		switch {
		case sent && e.State != storage.LedgerAccepted:
			t.Errorf("%s was sent but its ledger entry is %q", to[i], e.State)
		case !sent && e.State != 0:
			t.Errorf("%s was not sent but its ledger entry is %q", to[i], e.State)
		}
	}
}

// TestEveryRequestFindsItsRowStamped protects the ledger's rule when rows
// are stamped in groups: a row is stamped (LedgerSending) before its own
// request starts, and every row of a personalised batch is sent once.
func TestEveryRequestFindsItsRowStamped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := spec("grouped", campaigns.ChannelSMS)
	var to []string
	for i := 1; i <= 37; i++ { // groups of PerCallConcurrency (4), the last one short
		to = append(to, fmt.Sprintf("+23480300%05d", i))
	}
	batch := b.campaign(t, s, to...)
	row := map[string]int{}
	for _, it := range batch.Items {
		row[it.To] = it.Row
	}
	var mu sync.Mutex
	var bad []string
	b.prov.sms = func(got []string, _ string) ([]oneroute.Result, error) {
		e, err := b.store.Ledger(context.Background(), s.ID, []int{row[got[0]]})
		if err != nil || e[0].State != storage.LedgerSending {
			mu.Lock()
			bad = append(bad, fmt.Sprintf("%s: ledger %q, %v", got[0], e[0].State, err))
			mu.Unlock()
		}
		return ok(got), nil
	}
	if err := b.run(t, batch); err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Fatalf("requests started before their row was stamped: %v", bad)
	}
	for _, addr := range to {
		if n := b.prov.times(addr); n != 1 {
			t.Errorf("%s sent %d times, want 1", addr, n)
		}
	}
	if p := b.progress(t, s.ID); p.Sent != int64(len(to)) {
		t.Errorf("sent = %d, want %d", p.Sent, len(to))
	}
}
