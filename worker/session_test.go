package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// sendCounter counts, per customer, the session messages and template
// messages the sandbox accepted (HTTP 200), by endpoint.
type sendCounter struct {
	next http.Handler
	mu   sync.Mutex
	// session and template: customer number -> accepted sends.
	session, template map[string]int
	refused           int // session messages refused (closed window)
	// failTemplate: customers whose next template request fails with a
	// 500 before reaching the sandbox.
	failTemplate map[string]bool
	failed       int
	noMedia      int // session messages sent without the batch's image
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

func (c *sendCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if r.URL.Path == "/api/public/conversation/template" && c.fail(body) {
		http.Error(w, `{"success":false,"message":"Internal server error"}`, http.StatusInternalServerError)
		return
	}
	sw := &statusWriter{ResponseWriter: w, status: 200}
	c.next.ServeHTTP(sw, r)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r.URL.Path {
	case "/api/public/conversation/text":
		var q struct {
			To         string
			Attachment *struct{ Type, URL string }
		}
		_ = json.Unmarshal(body, &q)
		if q.Attachment == nil || q.Attachment.Type != "IMAGE" {
			c.noMedia++
		}
		if sw.status == 200 {
			c.session[q.To]++
		} else {
			c.refused++
		}
	case "/api/public/conversation/template":
		var q struct{ Messages []struct{ To string } }
		_ = json.Unmarshal(body, &q)
		if sw.status == 200 {
			for _, m := range q.Messages {
				c.template[m.To]++
			}
		}
	}
}

// fail reports whether a template request is to fail, and forgets the
// customers it names.
func (c *sendCounter) fail(body []byte) bool {
	var q struct{ Messages []struct{ To string } }
	_ = json.Unmarshal(body, &q)
	c.mu.Lock()
	defer c.mu.Unlock()
	hit := false
	for _, m := range q.Messages {
		if c.failTemplate[m.To] {
			delete(c.failTemplate, m.To)
			hit = true
		}
	}
	if hit {
		c.failed++
	}
	return hit
}

func (c *sendCounter) totals() (session, template, dup int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for to, n := range c.session {
		session += n
		dup += n - 1 + c.template[to]
	}
	for _, n := range c.template {
		template += n
		dup += n - 1
	}
	return session, template, dup
}

type sessionBundle struct {
	*testBundle
	count *sendCounter
	api   *httptest.Server
	sbNow *fakeClock // the sandbox's clock
	clk   *fakeClock // the worker's clock
}

// setupSession runs a worker on a sandbox, each with its own fake clock.
func setupSession(t *testing.T) *sessionBundle {
	t.Helper()
	now := time.Date(2099, 3, 1, 12, 0, 0, 0, time.UTC)
	b := &sessionBundle{sbNow: &fakeClock{now: now}, clk: &fakeClock{now: now}}
	srv := redistest.Start(t)
	sb := sandbox.New(sandbox.Options{DLRDelay: -1, Now: b.sbNow.Now})
	t.Cleanup(sb.Close)
	b.count = &sendCounter{next: sb, session: map[string]int{}, template: map[string]int{}, failTemplate: map[string]bool{}}
	b.api = httptest.NewServer(b.count)
	t.Cleanup(b.api.Close)
	client, err := oneroute.New(oneroute.Options{BaseURL: b.api.URL, APIKey: sandbox.KeyPrefix + "session"})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{MaxAttempts: 3, RequestTimeout: 2 * time.Second, PerCallConcurrency: 8, NowFunc: b.clk.Now}
	b.testBundle = &testBundle{ctx: context.Background(), store: storage.New(srv.Client(t)), enq: &fakeEnqueuer{}, opts: o}
	b.mux = NewMux(Deps{Store: b.store, Provider: client, Enqueuer: b.enq}, o)
	return b
}

func sessionNumber(row int) string { return fmt.Sprintf("+234803%07d", row) }

// inbound has customer row write to the business at the sandbox's clock
// (opening its window there) and records it in fanout's session store at
// at, as the webhook receiver would.
func (b *sessionBundle) inbound(t *testing.T, row int, at time.Time, sandboxToo bool) {
	t.Helper()
	if sandboxToo {
		body := fmt.Sprintf(`{"from":%q,"to":%q,"message":"hello"}`, sessionNumber(row), sandbox.WhatsAppNumber)
		resp, err := http.Post(b.api.URL+"/sandbox/inbound", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("sandbox inbound: HTTP %d", resp.StatusCode)
		}
	}
	if _, err := b.store.RecordInbound(b.ctx, b.clk.Now(), storage.Inbound{Business: sandbox.WhatsAppNumber, Customer: sessionNumber(row), At: at}); err != nil {
		t.Fatal(err)
	}
}

// sessionCampaign creates a dispatched whatsapp_session campaign of n
// recipients (rows 1..n) and returns its batches of 50.
func (b *sessionBundle) sessionCampaign(t *testing.T, id string, n int, price float64) []*campaigns.Batch {
	t.Helper()
	s := campaigns.Spec{ID: id, Channel: campaigns.ChannelWhatsAppSession, From: sandbox.WhatsAppNumber, Message: "hi",
		FallbackTemplate: &campaigns.Template{Name: "first_welcome_messsage"}, TemplatePrice: price, Recipients: "r.csv"}
	if _, err := b.store.Create(b.ctx, s); err != nil {
		t.Fatal(err)
	}
	var batches []*campaigns.Batch
	for seq := 0; seq*50 < n; seq++ {
		batch := &campaigns.Batch{Campaign: id, Seq: seq, Channel: s.Channel, From: s.From, Template: s.FallbackTemplate.Name,
			Shared: &campaigns.Content{Text: "hi", Params: []string{"Ada"}}, MediaURL: "https://cdn.example.com/parcel.jpg"}
		for row := seq*50 + 1; row <= min(n, seq*50+50); row++ {
			batch.Items = append(batch.Items, campaigns.Item{Row: row, To: sessionNumber(row)})
		}
		if _, err := b.store.AddBatch(b.ctx, id, seq, len(batch.Items), len(batch.Items)); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, batch)
	}
	if err := b.store.FinishDispatch(b.ctx, id, storage.DispatchCounts{Rows: n}); err != nil {
		t.Fatal(err)
	}
	return batches
}

func (b *sessionBundle) runAll(t *testing.T, batches []*campaigns.Batch) {
	t.Helper()
	for _, batch := range batches {
		if err := b.mux.ProcessTask(b.ctx, asynq.NewTask(tasks.SendType(batch.Channel), tasks.Encode(batch))); err != nil {
			t.Fatalf("batch %d: %v (%s)", batch.Seq, err, b.progress(t, batch.Campaign).Reason)
		}
	}
}

// Done-when (issue 14): a 1,000-recipient whatsapp_session campaign where
// the sandbox knows 400 open windows sends exactly 400 session messages and
// 600 templates, each recipient once; running every task again sends
// nothing more. Status counts both routes and the saving.
func TestSessionCampaignSplitsByWindow(t *testing.T) {
	t.Parallel()
	b := setupSession(t)
	const n, open = 1000, 400
	// Two of every five recipients: open windows in every batch.
	isOpen := func(row int) bool { return row%5 < 2 }
	ago := b.clk.Now().Add(-time.Hour)
	b.sbNow.Set(ago)
	for row := 1; row <= n; row++ {
		if isOpen(row) {
			b.inbound(t, row, ago, true)
		}
	}
	// The last customer wrote 23h45m ago: 15 minutes left, under the
	// 30-minute margin, so the template although the sandbox would still
	// take a session message.
	nearEnd := b.clk.Now().Add(-storage.SessionWindow + 15*time.Minute)
	b.sbNow.Set(nearEnd)
	b.inbound(t, n, nearEnd, true)
	b.sbNow.Set(b.clk.Now())
	batches := b.sessionCampaign(t, "split", n, 0.0125)

	b.runAll(t, batches)
	session, template, dup := b.count.totals()
	if session != open || template != n-open || dup != 0 {
		t.Fatalf("sandbox accepted %d session messages, %d templates, %d duplicates; want %d, %d, 0", session, template, dup, open, n-open)
	}
	for row := 1; row <= n; row++ {
		to := strings.TrimPrefix(sessionNumber(row), "+")
		if got := b.count.session[to]; isOpen(row) != (got == 1) {
			t.Fatalf("row %d (open %v): %d session messages", row, isOpen(row), got)
		}
	}
	if b.count.refused != 0 || b.count.noMedia != 0 {
		t.Errorf("%d session messages refused, %d without their image; want 0, 0", b.count.refused, b.count.noMedia)
	}
	p := b.progress(t, "split")
	if p.Sent != n || p.SessionSent != open || p.TemplateSent != n-open || p.Pending != 0 {
		t.Fatalf("progress: sent %d session_sent %d template_sent %d pending %d; want %d %d %d 0", p.Sent, p.SessionSent, p.TemplateSent, p.Pending, n, open, n-open)
	}
	if want := 400 * 0.0125; p.SavedEstimate < want-1e-9 || p.SavedEstimate > want+1e-9 {
		t.Errorf("saved_estimate %v, want %v", p.SavedEstimate, want)
	}

	b.runAll(t, batches) // asynq runs a task again (a crash, a requeue)
	if s2, t2, d2 := b.count.totals(); s2 != session || t2 != template || d2 != 0 {
		t.Fatalf("re-run: %d session, %d template, %d duplicates; want nothing more", s2, t2, d2)
	}
	if p2 := b.progress(t, "split"); p2.SessionSent != open || p2.TemplateSent != n-open {
		t.Fatalf("re-run counted again: session_sent %d template_sent %d", p2.SessionSent, p2.TemplateSent)
	}
}

// A window that closes between fanout's check and the send: fanout's store
// says open (45 minutes left, over the margin) but by the sandbox's clock
// the send comes after the window ended, so OneRoute refuses the session
// message. Each of those recipients gets the template exactly once, and
// running the tasks again sends nothing more.
func TestSessionWindowClosesBeforeTheSend(t *testing.T) {
	t.Parallel()
	b := setupSession(t)
	const n = 100
	now := b.clk.Now()
	closing := func(row int) bool { return row%10 < 3 } // 30
	open := func(row int) bool { return row%10 == 3 || row%10 == 4 }
	late := now.Add(-storage.SessionWindow + 45*time.Minute)
	b.sbNow.Set(late)
	for row := 1; row <= n; row++ {
		if closing(row) {
			b.inbound(t, row, late, true)
		}
	}
	b.sbNow.Set(now.Add(-time.Hour))
	for row := 1; row <= n; row++ {
		if open(row) {
			b.inbound(t, row, now.Add(-time.Hour), true)
		}
	}
	// The send happens an hour later by the sandbox's clock: the closing
	// windows have ended there, the open ones have not.
	b.sbNow.Set(now.Add(time.Hour))
	batches := b.sessionCampaign(t, "closing", n, 0)
	b.runAll(t, batches)

	if b.count.refused != 30 {
		t.Errorf("%d session messages refused, want the 30 closing windows", b.count.refused)
	}
	for row := 1; row <= n; row++ {
		to := strings.TrimPrefix(sessionNumber(row), "+")
		s, tp := b.count.session[to], b.count.template[to]
		if open(row) && (s != 1 || tp != 0) || !open(row) && (s != 0 || tp != 1) {
			t.Fatalf("row %d (open %v, closing %v): %d session, %d template", row, open(row), closing(row), s, tp)
		}
	}
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i + 1
	}
	routes, err := b.store.Routes(b.ctx, "closing", rows)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range routes {
		if want := map[bool]string{true: campaigns.RouteSession, false: campaigns.RouteTemplate}[open(i+1)]; r != want {
			t.Fatalf("row %d route %q, want %q", i+1, r, want)
		}
	}
	p := b.progress(t, "closing")
	if p.Sent != n || p.SessionSent != 20 || p.TemplateSent != 80 || p.Failed != 0 {
		t.Fatalf("progress: sent %d session_sent %d template_sent %d failed %d; want %d 20 80 0", p.Sent, p.SessionSent, p.TemplateSent, p.Failed, n)
	}
	b.runAll(t, batches)
	if s, tp, dup := b.count.totals(); s != 20 || tp != 80 || dup != 0 {
		t.Fatalf("after a re-run: %d session, %d template, %d duplicates; want 20, 80, 0", s, tp, dup)
	}
}

// SessionOpen keeps a margin before the 24 hours end.
func TestSessionOpen(t *testing.T) {
	t.Parallel()
	now := time.Date(2099, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		last time.Time
		want bool
	}{
		{"never wrote", time.Time{}, false},
		{"an hour ago", now.Add(-time.Hour), true},
		{"31 minutes left", now.Add(-24*time.Hour + 31*time.Minute), true},
		{"exactly the margin left", now.Add(-24*time.Hour + 30*time.Minute), true},
		{"29 minutes left", now.Add(-24*time.Hour + 29*time.Minute), false},
	} {
		if got := SessionOpen(tc.last, now, 30*time.Minute); got != tc.want {
			t.Errorf("%s: SessionOpen = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A fallback whose template request fails for a while (HTTP 500) is
// retried as the template: the follow-up task does not try the session
// message again (the row's route stays template), and the recipient gets
// one template in the end.
func TestSessionFallbackRetriesTheTemplateOnly(t *testing.T) {
	t.Parallel()
	b := setupSession(t)
	const n = 10
	now := b.clk.Now()
	late := now.Add(-storage.SessionWindow + 45*time.Minute)
	b.sbNow.Set(late)
	for row := 1; row <= n; row++ {
		b.inbound(t, row, late, true)
	}
	b.sbNow.Set(now.Add(time.Hour)) // every window has closed by the send
	b.count.failTemplate[strings.TrimPrefix(sessionNumber(3), "+")] = true
	batches := b.sessionCampaign(t, "retry", n, 0)
	b.runAll(t, batches)
	if b.count.failed != 1 || b.count.refused != n {
		t.Fatalf("%d template requests failed, %d session messages refused; want 1 and %d", b.count.failed, b.count.refused, n)
	}
	children := b.enq.take(tasks.TypeWhatsAppSession)
	if len(children) != 1 {
		t.Fatalf("%d follow-up tasks, want 1 for the failed template", len(children))
	}
	for _, c := range children {
		if err := b.mux.ProcessTask(b.ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if b.count.refused != n {
		t.Errorf("the follow-up tried the session message again: %d refused", b.count.refused)
	}
	if s, tp, dup := b.count.totals(); s != 0 || tp != n || dup != 0 {
		t.Fatalf("%d session, %d template, %d duplicates; want 0, %d, 0", s, tp, dup, n)
	}
	if p := b.progress(t, "retry"); p.Sent != n || p.TemplateSent != n || p.SessionSent != 0 || p.Pending != 0 {
		t.Fatalf("progress: sent %d template_sent %d session_sent %d pending %d", p.Sent, p.TemplateSent, p.SessionSent, p.Pending)
	}
}

// The attachment type follows the media URL's extension.
func TestAttachmentType(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://cdn.example.com/a.jpg":           "IMAGE",
		"https://cdn.example.com/a.PNG?x=1":       "IMAGE",
		"https://cdn.example.com/clip.mp4":        "VIDEO",
		"https://cdn.example.com/invoice.pdf?v=2": "DOCUMENT",
		"https://cdn.example.com/note.ogg":        "AUDIO",
		"https://cdn.example.com/media/123":       "IMAGE",
	} {
		if got := AttachmentType(in); got != want {
			t.Errorf("AttachmentType(%q) = %s, want %s", in, got, want)
		}
	}
}
