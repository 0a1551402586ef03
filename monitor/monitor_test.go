package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// fakeStore is an in-memory Campaigns that counts the changes made to it.
type fakeStore struct {
	mu      sync.Mutex
	camps   map[string]campaigns.Progress
	order   []string
	changes int
}

func newFakeStore(ps ...campaigns.Progress) *fakeStore {
	f := &fakeStore{camps: map[string]campaigns.Progress{}}
	for _, p := range ps {
		f.camps[p.ID] = p
		f.order = append(f.order, p.ID)
	}
	return f
}

func (f *fakeStore) List(_ context.Context, limit int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if limit <= 0 || limit > len(f.order) {
		limit = len(f.order)
	}
	return append([]string(nil), f.order[:limit]...), nil
}

func (f *fakeStore) Progress(_ context.Context, id string) (campaigns.Progress, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.camps[id]
	if !ok {
		return p, fmt.Errorf("campaign %s: %w", id, storage.ErrNotFound)
	}
	return p, nil
}

func (f *fakeStore) Spec(_ context.Context, id string) (campaigns.Spec, error) {
	if _, err := f.Progress(context.Background(), id); err != nil {
		return campaigns.Spec{}, err
	}
	return campaigns.Spec{ID: id, Rate: &campaigns.Rate{PerSecond: 20}}, nil
}

func (f *fakeStore) set(id string, from []campaigns.State, to campaigns.State, reason string) (campaigns.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.camps[id]
	if !ok {
		return "", fmt.Errorf("campaign %s: %w", id, storage.ErrNotFound)
	}
	for _, st := range from {
		if p.State == st {
			p.State, p.Reason = to, reason
			f.camps[id] = p
			f.changes++
			return to, nil
		}
	}
	return p.State, fmt.Errorf("campaign %s: %w", id, storage.ErrTransition)
}

func (f *fakeStore) Pause(_ context.Context, id, reason string) (campaigns.State, error) {
	return f.set(id, []campaigns.State{campaigns.StateRunning, campaigns.StateDispatching}, campaigns.StatePaused, reason)
}

func (f *fakeStore) Resume(_ context.Context, id, reason string) (campaigns.State, error) {
	return f.set(id, []campaigns.State{campaigns.StatePaused}, campaigns.StateRunning, reason)
}

func (f *fakeStore) Cancel(_ context.Context, id, reason string) (campaigns.State, error) {
	return f.set(id, []campaigns.State{campaigns.StateRunning, campaigns.StateDispatching, campaigns.StatePaused}, campaigns.StateCancelled, reason)
}

func (f *fakeStore) changed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changes
}

var (
	operator = Credentials{User: "ops", Password: "op-secret"}
	viewer   = Credentials{User: "watch", Password: "view-secret"}
)

// testBundle is a monitor on a fake store with one running campaign,
// "spring", and a fake Asynq UI that records what reached it.
type testBundle struct {
	store  *fakeStore
	srv    *httptest.Server
	uiHits []string
	mu     sync.Mutex
	subs   []Submission
}

func setup(t *testing.T, o Options) *testBundle {
	t.Helper()
	eta := 42.0
	b := &testBundle{store: newFakeStore(campaigns.Progress{
		ID: "spring", Name: "Spring sale", Channel: campaigns.ChannelSMS, State: campaigns.StateRunning,
		Total: 100, Sent: 40, Delivered: 30, Failed: 5, Unknown: 1, Pending: 54, Rate: 2.5, ETA: &eta,
		FailureReasons: map[string]int64{"invalid number": 4, "unknown subscriber": 2},
		CreatedAt:      time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
	})}
	o.Store = b.store
	if o.Auth == (Auth{}) {
		o.Auth = Auth{Operator: &operator, Viewer: &viewer}
	}
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.uiHits = append(b.uiHits, r.Method+" "+r.URL.Path)
		b.mu.Unlock()
		w.Write([]byte("asynq ui"))
	})
	o.AsynqUI, o.AsynqUIReadOnly = ui, ui
	o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("fanout_x 1\n")) })
	if o.Submit == nil {
		o.Submit = func(ctx context.Context, s Submission) (string, any, error) {
			data, err := os.ReadFile(s.RecipientsPath)
			if err != nil {
				return "", nil, err
			}
			b.mu.Lock()
			b.subs = append(b.subs, s)
			b.mu.Unlock()
			if strings.Contains(string(s.Spec), "broken") {
				return "", nil, fmt.Errorf("%w: spec.yaml:1: channel is missing", ErrBadInput)
			}
			return "new-campaign", map[string]int{"bytes": len(data)}, nil
		}
	}
	b.srv = httptest.NewServer(New(o))
	t.Cleanup(b.srv.Close)
	return b
}

type call struct {
	method, path string
	body         io.Reader
	ctype        string
	header       map[string]string
}

func (b *testBundle) do(t *testing.T, who *Credentials, c call) (int, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, b.srv.URL+c.path, c.body)
	if err != nil {
		t.Fatal(err)
	}
	if who != nil {
		req.SetBasicAuth(who.User, who.Password)
	}
	if c.ctype != "" {
		req.Header.Set("Content-Type", c.ctype)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// routes are every route of the monitor but health.
var routes = []call{
	{method: "GET", path: "/"},
	{method: "GET", path: "/campaigns/spring"},
	{method: "POST", path: "/campaigns/spring/pause"},
	{method: "GET", path: "/api/campaigns"},
	{method: "GET", path: "/api/campaigns/spring"},
	{method: "POST", path: "/api/campaigns"},
	{method: "POST", path: "/api/campaigns/spring/pause"},
	{method: "POST", path: "/api/campaigns/spring/resume"},
	{method: "POST", path: "/api/campaigns/spring/cancel"},
	{method: "GET", path: "/api/nothing"},
	{method: "GET", path: "/metrics"},
	{method: "GET", path: "/monitoring/"},
	{method: "GET", path: "/monitoring/api/queues"},
	{method: "DELETE", path: "/monitoring/api/queues/sms"},
	{method: "GET", path: "/no/such/page"},
}

// Without credentials, or with wrong ones, every route but /healthz and
// /readyz answers 401 and reaches nothing behind it.
func TestEveryRouteButHealthNeedsCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	wrong := &Credentials{User: operator.User, Password: "guess"}
	for _, who := range []*Credentials{nil, wrong, {User: "", Password: ""}} {
		for _, c := range routes {
			code, body := b.do(t, who, c)
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s as %v: %d %s, want 401", c.method, c.path, who, code, body)
			}
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := b.do(t, nil, call{method: "GET", path: path}); code != http.StatusOK {
			t.Errorf("%s: %d %s, want 200 without credentials", path, code, body)
		}
	}
	if b.store.changed() != 0 || len(b.uiHits) != 0 {
		t.Errorf("unauthenticated requests got through: %d changes, UI hits %v", b.store.changed(), b.uiHits)
	}
}

// A read-only user sees every page, and every state-changing request
// answers 403 and changes nothing, the Asynq UI's included.
func TestViewerSeesButChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	for _, c := range routes {
		code, body := b.do(t, &viewer, c)
		switch {
		case c.method != "GET" && code != http.StatusForbidden:
			t.Errorf("%s %s as viewer: %d %s, want 403", c.method, c.path, code, body)
		case c.method == "GET" && code == http.StatusForbidden || code == http.StatusUnauthorized:
			t.Errorf("%s %s as viewer: %d %s, want it shown", c.method, c.path, code, body)
		}
	}
	if n := b.store.changed(); n != 0 {
		t.Errorf("viewer made %d changes", n)
	}
	for _, hit := range b.uiHits {
		if !strings.HasPrefix(hit, "GET ") {
			t.Errorf("viewer's %s reached the Asynq UI", hit)
		}
	}
	if p, _ := b.store.Progress(context.Background(), "spring"); p.State != campaigns.StateRunning {
		t.Errorf("state %s after the viewer's requests", p.State)
	}
	// The page shows no buttons to a viewer.
	if _, page := b.do(t, &viewer, call{method: "GET", path: "/campaigns/spring"}); strings.Contains(page, `id="pause"`) {
		t.Error("viewer's campaign page has a pause button")
	}
}

// With FANOUT_MONITOR_READONLY operators are viewers too.
func TestReadOnlyMonitorRefusesOperators(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Auth: Auth{Operator: &operator, ReadOnly: true}})
	code, body := b.do(t, &operator, call{method: "POST", path: "/api/campaigns/spring/pause"})
	if code != http.StatusForbidden || !strings.Contains(body, "read-only") {
		t.Errorf("pause in read-only mode: %d %s", code, body)
	}
	if b.store.changed() != 0 {
		t.Error("read-only monitor changed a campaign")
	}
}

// An operator's pause, resume and cancel go through the store and answer
// the status object; mistakes answer JSON errors with the right codes.
func TestOperatorControls(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	steps := []struct {
		path  string
		body  string
		code  int
		state campaigns.State
		want  string
	}{
		{"/api/campaigns/spring/pause", `{"reason":"checking the template"}`, 200, campaigns.StatePaused, `"reason":"checking the template"`},
		{"/api/campaigns/spring/pause", "", 409, campaigns.StatePaused, `"error":"cannot pause campaign spring: it is paused"`},
		{"/api/campaigns/spring/resume", "", 200, campaigns.StateRunning, `"state":"running"`},
		{"/api/campaigns/spring/explode", "", 404, campaigns.StateRunning, `unknown action`},
		{"/api/campaigns/nope/cancel", "", 404, campaigns.StateRunning, `no campaign \"nope\"`},
		{"/api/campaigns/spring/cancel", "", 200, campaigns.StateCancelled, `"reason":"by ops from the monitor"`},
	}
	for _, s := range steps {
		c := call{method: "POST", path: s.path}
		if s.body != "" {
			c.body, c.ctype = strings.NewReader(s.body), "application/json"
		}
		code, body := b.do(t, &operator, c)
		if code != s.code || !strings.Contains(body, s.want) {
			t.Errorf("POST %s: %d %s, want %d with %s", s.path, code, body, s.code, s.want)
		}
		if !json.Valid([]byte(body)) {
			t.Errorf("POST %s: body is not JSON: %s", s.path, body)
		}
		if p, _ := b.store.Progress(context.Background(), "spring"); p.State != s.state {
			t.Errorf("after %s: state %s, want %s", s.path, p.State, s.state)
		}
	}
}

// A state-changing request from another site's page is refused even with
// the operator's credentials (which a browser would send along).
func TestCrossOriginPostRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
	} {
		code, body := b.do(t, &operator, call{method: "POST", path: "/campaigns/spring/pause", header: h})
		if code != http.StatusForbidden {
			t.Errorf("POST with %v: %d %s, want 403", h, code, body)
		}
	}
	if b.store.changed() != 0 {
		t.Fatal("a cross-origin request paused the campaign")
	}
	// The dashboard's own form, from the same origin, works.
	code, _ := b.do(t, &operator, call{method: "POST", path: "/campaigns/spring/pause",
		header: map[string]string{"Origin": b.srv.URL, "Sec-Fetch-Site": "same-origin"}})
	if code != http.StatusOK || b.store.changed() != 1 { // the client follows the 303 to the page
		t.Errorf("same-origin pause: %d, %d changes", code, b.store.changed())
	}
}

// The monitor never listens beyond the loopback without credentials,
// unless told to.
func TestCheckListen(t *testing.T) {
	t.Parallel()
	withAuth := Auth{Operator: &operator}
	for _, c := range []struct {
		addr     string
		auth     Auth
		insecure bool
		ok       bool
	}{
		{"127.0.0.1:8080", Auth{}, false, true},
		{"[::1]:8080", Auth{}, false, true},
		{"localhost:8080", Auth{}, false, true},
		{":8080", Auth{}, false, false},
		{"0.0.0.0:8080", Auth{}, false, false},
		{"10.1.2.3:8080", Auth{}, false, false},
		{"monitor.internal:8080", Auth{}, false, false},
		{"0.0.0.0:8080", withAuth, false, true},
		{"0.0.0.0:8080", Auth{Viewer: &viewer}, false, true},
		{"0.0.0.0:8080", Auth{}, true, true},
	} {
		err := CheckListen(c.addr, c.auth, c.insecure)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, auth %v, insecure %v) = %v, want ok %v", c.addr, c.auth.Enabled(), c.insecure, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrInsecureListen) {
			t.Errorf("error %v is not ErrInsecureListen", err)
		}
	}
}

func TestParseCredentials(t *testing.T) {
	t.Parallel()
	c, err := ParseCredentials("ops:pa:ss")
	if err != nil || c.User != "ops" || c.Password != "pa:ss" {
		t.Errorf("ParseCredentials(ops:pa:ss) = %+v, %v", c, err)
	}
	for _, bad := range []string{"", "ops", "ops:", ":pass"} {
		if _, err := ParseCredentials(bad); err == nil {
			t.Errorf("ParseCredentials(%q) accepted", bad)
		}
	}
}

func multipartBody(t *testing.T, parts map[string]string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, name := range []string{"id", "spec", "recipients", "extra"} {
		v, ok := parts[name]
		if !ok {
			continue
		}
		if name == "id" || name == "extra" {
			mw.WriteField(name, v) //nolint:errcheck // a multipart writer over a bytes.Buffer cannot fail
			continue
		}
		w, _ := mw.CreateFormFile(name, name+map[string]string{"spec": ".yaml", "recipients": ".csv"}[name])
		w.Write([]byte(v)) //nolint:errcheck // a multipart writer over a bytes.Buffer cannot fail
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

// POST /api/campaigns hands the spec and the uploaded file to the submit
// path and answers 201; missing parts, a body over the limit and a bad
// spec answer JSON errors, and nothing is submitted for them.
func TestSubmit(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{MaxUpload: 4096})
	body, ctype := multipartBody(t, map[string]string{"id": "c1", "spec": "channel: sms\n", "recipients": "phone\n08031234567\n"})
	code, resp := b.do(t, &operator, call{method: "POST", path: "/api/campaigns", body: body, ctype: ctype})
	if code != http.StatusCreated || !strings.Contains(resp, `"id":"new-campaign"`) || !strings.Contains(resp, `"bytes":18`) {
		t.Fatalf("submit: %d %s", code, resp)
	}
	if len(b.subs) != 1 || b.subs[0].ID != "c1" || string(b.subs[0].Spec) != "channel: sms\n" || !strings.HasSuffix(b.subs[0].RecipientsPath, ".csv") {
		t.Fatalf("submission %+v", b.subs)
	}
	if _, err := os.Stat(b.subs[0].RecipientsPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the uploaded file %s was left behind: %v", b.subs[0].RecipientsPath, err)
	}
	for name, c := range map[string]struct {
		parts map[string]string
		code  int
		want  string
	}{
		"no spec":       {map[string]string{"recipients": "phone\n"}, 400, "missing part spec"},
		"no recipients": {map[string]string{"spec": "x: 1\n"}, 400, "missing part recipients"},
		"unknown part":  {map[string]string{"spec": "x: 1\n", "extra": "1"}, 400, `unknown part \"extra\"`},
		"too large":     {map[string]string{"spec": "x: 1\n", "recipients": strings.Repeat("0803123456\n", 1000)}, 413, "too large"},
		"bad spec":      {map[string]string{"spec": "broken\n", "recipients": "phone\n"}, 400, "channel is missing"},
	} {
		body, ctype := multipartBody(t, c.parts)
		code, resp := b.do(t, &operator, call{method: "POST", path: "/api/campaigns", body: body, ctype: ctype})
		if code != c.code || !strings.Contains(resp, c.want) || !json.Valid([]byte(resp)) {
			t.Errorf("%s: %d %s, want %d with %q", name, code, resp, c.code, c.want)
		}
	}
	if code, resp := b.do(t, &operator, call{method: "POST", path: "/api/campaigns", body: strings.NewReader("{}"), ctype: "application/json"}); code != 400 || !strings.Contains(resp, "multipart") {
		t.Errorf("JSON body: %d %s", code, resp)
	}
	if len(b.subs) != 2 { // the first and "bad spec", which the submit path refused
		t.Errorf("%d submissions, want 2", len(b.subs))
	}
}

// The API lists campaigns and shows one as the status object; the list
// page and the campaign page show the counters, the bar and the reasons.
func TestPagesAndAPIShowCampaigns(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	code, body := b.do(t, &viewer, call{method: "GET", path: "/api/campaigns"})
	var list campaignList
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list.Campaigns) != 1 || list.Campaigns[0].Sent != 40 {
		t.Errorf("GET /api/campaigns: %d %s", code, body)
	}
	if code, body := b.do(t, &viewer, call{method: "GET", path: "/api/campaigns?limit=x"}); code != 400 || !json.Valid([]byte(body)) {
		t.Errorf("bad limit: %d %s", code, body)
	}
	if code, body := b.do(t, &viewer, call{method: "GET", path: "/api/campaigns/nope"}); code != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("missing campaign: %d %s", code, body)
	}
	code, page := b.do(t, &viewer, call{method: "GET", path: "/"})
	for _, want := range []string{`data-campaign="spring"`, `data-state="delivered" data-count="30"`, `data-state="sent" data-count="10"`,
		`data-state="failed" data-count="5"`, `data-state="remaining" data-count="54"`, "2.5/s", "42s", "20/s", `http-equiv="refresh"`} {
		if code != 200 || !strings.Contains(page, want) {
			t.Errorf("list page lacks %s (%d)", want, code)
		}
	}
	code, page = b.do(t, &operator, call{method: "GET", path: "/campaigns/spring"})
	for _, want := range []string{`id="pause"`, `id="cancel"`, "invalid number", "unknown subscriber", "Spring sale", `content="5; url=/campaigns/spring"`} {
		if code != 200 || !strings.Contains(page, want) {
			t.Errorf("campaign page lacks %s (%d)", want, code)
		}
	}
	if strings.Index(page, "invalid number") > strings.Index(page, "unknown subscriber") {
		t.Error("reasons are not sorted by count")
	}
	if code, _ := b.do(t, &viewer, call{method: "GET", path: "/campaigns/nope"}); code != 404 {
		t.Errorf("missing campaign page: %d", code)
	}
}

// A bearer token has the operator's rights; a wrong one, or a token where
// none is configured, is refused like wrong credentials.
func TestBearerToken(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef-token"
	b := setup(t, Options{Auth: Auth{Viewer: &viewer, Token: token}})
	pause := call{method: "POST", path: "/api/campaigns/spring/pause"}
	for _, h := range []string{"Bearer wrong-token-0123456789", "Bearer ", "Basic " + token} {
		pause.header = map[string]string{"Authorization": h}
		if code, body := b.do(t, nil, pause); code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d %s, want 401", h, code, body)
		}
	}
	pause.header = map[string]string{"Authorization": "Bearer " + token}
	if code, body := b.do(t, nil, pause); code != http.StatusOK || b.store.changed() != 1 {
		t.Errorf("with the token: %d %s, %d changes", code, body, b.store.changed())
	}
	none := setup(t, Options{Auth: Auth{Operator: &operator}})
	if code, _ := none.do(t, nil, call{method: "GET", path: "/api/campaigns", header: map[string]string{"Authorization": "Bearer " + token}}); code != http.StatusUnauthorized {
		t.Errorf("a token where none is configured: %d, want 401", code)
	}
}
