package main

import (
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/internal/gencsv"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/monitor"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
)

// monitorBundle is a monitor in front of a private Redis that holds one
// dispatched SMS campaign, optionally with a worker sending it to the
// in-process sandbox.
type monitorBundle struct {
	cfg   config.Config
	rdb   redis.UniversalClient
	store *storage.Store
	spec  campaigns.Spec
	url   string // the monitor's base URL
}

// operator and viewer are the credentials of the monitor tests.
var (
	testOperator = monitor.Credentials{User: "admin", Password: "s3cret-op"}
	testViewer   = monitor.Credentials{User: "viewer", Password: "s3cret-view"}
)

// setupMonitor dispatches n recipients in batches of 5 and serves the
// monitor; with work, a worker sends them at perSecond through the sandbox.
func setupMonitor(t *testing.T, n int, work bool, perSecond int) *monitorBundle {
	t.Helper()
	ctx := context.Background()
	srv := redistest.Start(t)
	dir := t.TempDir()
	csv := filepath.Join(dir, "recipients.csv")
	if err := gencsv.Write(csv, n); err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(dir, "campaign.yaml")
	if err := os.WriteFile(specPath, []byte(`id: browser-test
name: Browser test
channel: sms
channel_id: 9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0002
message: "Hi {{.first_name}}, {{.discount}}% off"
recipients: recipients.csv
batch_size: 5
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Redis.URL = srv.URL()
	_, base, stopSandbox, err := startSandboxAPI()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopSandbox)
	useSandbox(&cfg, base)
	cfg.RateLimit.PerSecond, cfg.RateLimit.Burst = perSecond, 5
	log := zerolog.Nop()
	rdb, err := openRedis(ctx, cfg.Redis, 40)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	spec, err := campaigns.LoadSpec(specPath)
	if err != nil {
		t.Fatal(err)
	}
	in, err := dispatcher.Open(spec, spec.RecipientsPath(), nil, recipients.OptionsOf(spec))
	if err != nil {
		t.Fatal(err)
	}
	opts := dispatchOptions(cfg)
	opts.BatchSize = 5
	if _, err := dispatchSpec(ctx, cfg, in.Spec, in.Source, opts, log); err != nil {
		t.Fatal(err)
	}
	in.Close()
	if work {
		client, err := newOneRoute(cfg.OneRoute)
		if err != nil {
			t.Fatal(err)
		}
		w := newWorker(rdb, client, ratelimit.NewRedis(rdb), cfg, log)
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	app, closeApp, err := newMonitor(rdb, cfg, monitor.Auth{Operator: &testOperator, Viewer: &testViewer}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeApp)
	hs := httptest.NewServer(app.handler)
	t.Cleanup(hs.Close)
	return &monitorBundle{cfg: cfg, rdb: rdb, store: storage.New(rdb), spec: in.Spec, url: hs.URL}
}

// get fetches path as who (nil: no credentials).
func (b *monitorBundle) get(t *testing.T, who *monitor.Credentials, path string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.url+path, nil)
	if who != nil {
		req.SetBasicAuth(who.User, who.Password)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// phoneOrEmail matches anything that looks like a phone number (7 or more
// digits, with or without +) or an email address.
var phoneOrEmail = regexp.MustCompile(`\+?\d{7,}|[^\s"@]+@[^\s"@]+\.[a-z]{2,}`)

// The Asynq UI's task lists show fanout payloads as one-line summaries
// (campaign, batch, recipient count) and never a recipient's number or
// address, in every task state it lists.
func TestAsynqUIPayloadsHideRecipients(t *testing.T) {
	t.Parallel()
	b := setupMonitor(t, 40, false, 0)
	resp := b.get(t, &testOperator, "/monitoring/api/queues/sms/pending_tasks?page=1&page_size=100")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pending tasks: %d %s", resp.StatusCode, body)
	}
	var list struct {
		Tasks []struct {
			ID      string `json:"id"`
			Payload string `json:"payload"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Tasks) == 0 {
		t.Fatalf("no pending tasks listed: %s", body)
	}
	summary := regexp.MustCompile(`^browser-test · batch \d+ · \d+ recipients?$`)
	for _, task := range list.Tasks {
		if !summary.MatchString(task.Payload) {
			t.Errorf("task %s payload %q is not the one-line summary", task.ID, task.Payload)
		}
	}
	var queues struct {
		Queues []struct {
			Name string `json:"queue"`
		} `json:"queues"`
	}
	if err := json.NewDecoder(b.get(t, &testOperator, "/monitoring/api/queues").Body).Decode(&queues); err != nil || len(queues.Queues) == 0 {
		t.Fatalf("queues: %v %+v", err, queues)
	}
	for _, state := range []string{"active", "pending", "scheduled", "retry", "archived", "completed"} {
		for _, qi := range queues.Queues {
			q := qi.Name
			resp := b.get(t, &testOperator, "/monitoring/api/queues/"+q+"/"+state+"_tasks?page=1&page_size=100")
			var got struct {
				Tasks json.RawMessage `json:"tasks"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s tasks: %d %v", q, state, resp.StatusCode, err)
			}
			// The tasks, not the stats beside them, whose timestamps are
			// long runs of digits.
			if m := phoneOrEmail.Find(got.Tasks); m != nil {
				t.Errorf("%s %s tasks show %q: %s", q, state, m, got.Tasks)
			}
		}
	}
	// The API response the check greps does hold the summary, so the grep
	// looked at the payloads.
	if !strings.Contains(string(body), "browser-test · batch") {
		t.Fatalf("summary missing from %s", body)
	}
}

// monitor refuses to serve on a non-loopback address without credentials,
// before it connects anywhere, and names the fix; bad credentials in the
// environment are refused the same way.
func TestMonitorRefusesOpenAddressWithoutAuth(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"all interfaces": {nil, []string{"monitor", "--addr", "0.0.0.0:0"}, "FANOUT_MONITOR_AUTH"},
		"from env":       {map[string]string{"FANOUT_MONITOR_ADDR": ":0"}, []string{"monitor"}, "--insecure"},
		"bad auth":       {map[string]string{"FANOUT_MONITOR_AUTH": "nopassword"}, []string{"monitor"}, "FANOUT_MONITOR_AUTH: want user:password"},
	} {
		b := setup(t)
		b.env["REDIS_URL"] = "redis://127.0.0.1:1/0" // never reached
		for k, v := range c.env {
			b.env[k] = v
		}
		if code := b.run(t, c.args...); code != exitBadInput || !strings.Contains(b.stderr.String(), c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 naming %s", name, code, b.stderr.String(), c.want)
		}
	}
}

// fanout worker --metrics-addr serves /healthz at once, /readyz once its
// asynq server has sent a heartbeat, and /metrics with the OneRoute
// request latency of the sends it made through the timed transport.
func TestWorkerMetricsPort(t *testing.T) {
	t.Parallel()
	b := setupMonitor(t, 20, false, 0)
	_, base, stopSandbox, err := startSandboxAPI()
	if err != nil {
		t.Fatal(err)
	}
	defer stopSandbox()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the worker listens there; another process taking it meanwhile fails the test loudly
	e := &env{stdout: io.Discard, stderr: io.Discard, stdin: strings.NewReader(""), getenv: func(k string) string {
		return map[string]string{"REDIS_URL": b.cfg.Redis.URL, "ONEROUTE_BASE_URL": base, "ONEROUTE_API_KEY": "test_metrics",
			"FANOUT_POLL_INTERVAL": "200ms", "FANOUT_DLR_INTERVAL": "200ms", "FANOUT_DLR_MAX_AGE": "2s", "LOG_LEVEL": "warn"}[k]
	}}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() { exited <- runMain(ctx, e, []string{"worker", "--metrics-addr", addr, "--concurrency", "4"}) }()
	defer func() {
		cancel()
		if code := <-exited; code != exitOK {
			t.Errorf("worker exit %d", code)
		}
	}()
	fetch := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	testwait.For(t, "/healthz to answer", 30*time.Second, func() bool { code, _ := fetch("/healthz"); return code == 200 })
	testwait.For(t, "/readyz to say ready", 30*time.Second, func() bool { code, _ := fetch("/readyz"); return code == 200 })
	testwait.For(t, "the campaign to be sent", 60*time.Second, func() bool {
		p, err := b.store.Progress(context.Background(), b.spec.ID)
		return err == nil && p.Pending == 0
	})
	code, body := fetch("/metrics")
	want := `fanout_provider_request_duration_seconds_count{endpoint="POST /api/public/channel/{id}/sms",status_class="2xx"}`
	if code != 200 || !strings.Contains(body, want) {
		t.Errorf("/metrics: %d, lacks %s:\n%s", code, want, grepLines(body, "fanout_"))
	}
	if !strings.Contains(body, `fanout_ratelimit_wait_seconds_count{channel="sms"}`) {
		t.Errorf("/metrics lacks the limiter's waits:\n%s", grepLines(body, "fanout_ratelimit"))
	}
	for _, labels := range regexp.MustCompile(`\{[^}]*\}`).FindAllString(grepLines(body, "fanout_"), -1) {
		if phoneOrEmail.MatchString(labels) {
			t.Errorf("a recipient appears in the worker's metrics: %s", labels)
		}
	}
}

// grepLines keeps the lines of s that start with prefix.
func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// post sends a multipart campaign to POST /api/campaigns as who.
func (b *monitorBundle) post(t *testing.T, who *monitor.Credentials, spec, recipientsName, recipientsBody string) (int, string) {
	t.Helper()
	var buf strings.Builder
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("spec", "campaign.yaml")
	fw.Write([]byte(spec)) //nolint:errcheck // a multipart part over a strings.Builder cannot fail
	fw, _ = mw.CreateFormFile("recipients", recipientsName)
	fw.Write([]byte(recipientsBody)) //nolint:errcheck // a multipart part over a strings.Builder cannot fail
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, b.url+"/api/campaigns", strings.NewReader(buf.String()))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.SetBasicAuth(who.User, who.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// POST /api/campaigns goes through dispatch --detach's path: the rows are
// checked and counted, the file is uploaded, the campaign is recorded and
// its expansion enqueued for the workers; a spec that cannot be sent, or
// one that names a file on the server, is refused with 400 and recorded
// nowhere.
func TestSubmitThroughTheMonitor(t *testing.T) {
	t.Parallel()
	b := setupMonitor(t, 10, false, 0)
	spec := "id: posted\nchannel: sms\nchannel_id: 9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0002\nmessage: \"Hi {{.first_name}}\"\n"
	csv := "phone,first_name\n08031234561,Ada\n+2348031234562,Bayo\nnot-a-number,Cy\n08031234561,Ada again\n"
	code, body := b.post(t, &testOperator, spec, "list.csv", csv)
	if code != http.StatusCreated {
		t.Fatalf("submit: %d %s", code, body)
	}
	var got struct {
		ID     string `json:"id"`
		Result struct {
			Valid, Invalid, Duplicates int
			Detached                   bool
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "posted" || got.Result.Valid != 2 || got.Result.Invalid != 1 || got.Result.Duplicates != 1 || !got.Result.Detached {
		t.Errorf("submit result %s", body)
	}
	p, err := b.store.Progress(context.Background(), "posted")
	if err != nil || p.State != campaigns.StateDispatching {
		t.Errorf("posted campaign: %+v, %v; want it recorded, dispatching", p, err)
	}
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	tasks, err := insp.ListPendingTasks("sms")
	found := false
	for _, ti := range tasks {
		found = found || ti.ID == "posted:expand:0"
	}
	if err != nil || !found {
		t.Errorf("no expansion task enqueued for the posted campaign: %v", err)
	}

	for name, c := range map[string]struct{ spec, want string }{
		"no message":                 {"id: broken\nchannel: sms\nchannel_id: x\n", "needs message"},
		"preflight: no such channel": {"id: unknown-channel\nchannel: sms\nchannel_id: nope\nmessage: hi\n", "channel_id nope is not a channel"},
		"suppress file":              {"id: sneaky\n" + spec[strings.Index(spec, "\n")+1:] + "suppress: /etc/passwd\n", "cannot name a file on the server"},
	} {
		code, body := b.post(t, &testOperator, c.spec, "list.csv", csv)
		if code != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want 400 with %q", name, code, body, c.want)
		}
	}
	for _, id := range []string{"broken", "sneaky", "unknown-channel"} {
		if _, err := b.store.Progress(context.Background(), id); err == nil {
			t.Errorf("refused campaign %s was recorded", id)
		}
	}
	if code, _ := b.post(t, &testViewer, spec, "list.csv", csv); code != http.StatusForbidden {
		t.Errorf("viewer's submit: %d, want 403", code)
	}
}
