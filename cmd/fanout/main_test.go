package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/storage"
)

// testBundle runs the fanout command in-process with a fake environment.
type testBundle struct {
	env    map[string]string
	stdout bytes.Buffer
	stderr bytes.Buffer
}

func (b *testBundle) run(t *testing.T, args ...string) int {
	t.Helper()
	b.stdout.Reset()
	b.stderr.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := &env{stdout: &b.stdout, stderr: &b.stderr, stdin: strings.NewReader(""), getenv: func(k string) string { return b.env[k] }}
	return runMain(ctx, e, args)
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	return &testBundle{env: map[string]string{"LOG_FORMAT": "json", "LOG_LEVEL": "warn"}}
}

// The whole path, on a private Redis: every valid recipient is sent once,
// the counters match the file's known delivered/undelivered split exactly,
// and the sandbox saw no duplicate.
func TestRunSandboxEndToEnd(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := setup(t)
	b.env["REDIS_URL"] = srv.URL()
	code := b.run(t, "run", "--sandbox", "--json", "--dlr-max-age", "3s", "--timeout", "90s", "testdata/e2e/campaign.yaml")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, b.stderr.String())
	}
	var got runResult
	if err := json.Unmarshal(b.stdout.Bytes(), &got); err != nil {
		t.Fatalf("decode %q: %v", b.stdout.String(), err)
	}
	want := map[string]int64{
		"total": 20, "sent": 20, "failed": 0, "unknown": 0, "skipped": 0, "pending": 0,
		"delivered": 16, "undelivered": 2, "dlr_expired": 2,
		"invalid": 2, "duplicates": 2, "suppressed": 0, "batches": 4,
	}
	have := map[string]int64{
		"total": got.Total, "sent": got.Sent, "failed": got.Failed, "unknown": got.Unknown, "skipped": got.Skipped,
		"pending": got.Pending, "delivered": got.Delivered, "undelivered": got.Undelivered, "dlr_expired": got.DLRExpired,
		"invalid": got.Invalid, "duplicates": got.Duplicates, "suppressed": got.Suppressed, "batches": got.Batches,
	}
	for k, v := range want {
		if have[k] != v {
			t.Errorf("%s = %d, want %d", k, have[k], v)
		}
	}
	if got.State != campaigns.StateCompleted {
		t.Errorf("state = %s, want completed", got.State)
	}
	if got.Sandbox == nil {
		t.Fatal("no sandbox stats in the output")
	}
	if got.Sandbox.Duplicates != 0 || got.Sandbox.Accepted != 20 || got.Sandbox.ByMedium["sms"] != 20 {
		t.Errorf("sandbox: accepted %d (sms %d), duplicates %d; want 20, 20, 0",
			got.Sandbox.Accepted, got.Sandbox.ByMedium["sms"], got.Sandbox.Duplicates)
	}
}

// Bad input stops with exit code 2 and a message that names the file, the
// line and the fix.
func TestBadInputNamesFileAndLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		spec string
		want []string
	}{
		{"missing recipients file", "testdata/e2e/missing_file.yaml", []string{"missing_file.yaml:5:", "nowhere.csv does not exist"}},
		{"unknown channel", "testdata/e2e/unknown_channel.yaml", []string{"unknown_channel.yaml:2:", `unknown channel "telegram"`, "sms, whatsapp_template, email"}},
		{"template refers to a missing column", "testdata/e2e/missing_column.yaml", []string{"missing_column.yaml:4:", `"first_name"`, "columns: phone, name"}},
		{"an unclosed quote would swallow rows", "testdata/e2e/unclosed.yaml", []string{"unclosed.csv:3:", "quote opens on line 3", "nothing was enqueued"}},
		{"a file with only a header", "testdata/e2e/header_only.yaml", []string{"header_only.csv", "no recipient"}},
		{"a JSON field the template needs is misspelled", "testdata/e2e/misspelled.yaml", []string{"misspelled.json:1:", `no field "name"`, "nme, phone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.env["REDIS_URL"] = "redis://127.0.0.1:1/0" // never reached: input is checked first
			code := b.run(t, "run", "--sandbox", tc.spec)
			if code != exitBadInput {
				t.Errorf("exit %d, want %d", code, exitBadInput)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, b.stderr.String())
				}
			}
		})
	}
}

// dispatch and worker refuse to start without an API key, and say how to fix it.
func TestNoAPIKeyStopsAtOnce(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"dispatch", "testdata/e2e/campaign.yaml"}, {"worker"}} {
		b := setup(t)
		b.env["REDIS_URL"] = "redis://127.0.0.1:1/0"
		code := b.run(t, args...)
		if code != exitBadInput || !strings.Contains(b.stderr.String(), "ONEROUTE_API_KEY is not set") {
			t.Errorf("%v: exit %d, stderr %q", args, code, b.stderr.String())
		}
	}
}

// A detached dispatch returns at once and the workers expand and send it:
// the same counts as an attached run.
func TestDetachedDispatchCompletesInWorkers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sb := sandbox.New(sandbox.Options{DLRDelay: 100 * time.Millisecond})
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	b := setup(t)
	for k, v := range map[string]string{"REDIS_URL": srv.URL(), "ONEROUTE_BASE_URL": api.URL, "ONEROUTE_API_KEY": "test_detach",
		"FANOUT_POLL_INTERVAL": "100ms", "FANOUT_DLR_INTERVAL": "200ms", "FANOUT_DLR_MAX_AGE": "2s"} {
		b.env[k] = v
	}
	if code := b.run(t, "dispatch", "--detach", "--json", "--id", "detached-e2e", "testdata/e2e/campaign.yaml"); code != 0 {
		t.Fatalf("dispatch --detach: exit %d\n%s", code, b.stderr.String())
	}
	cfg, err := config.Load(func(k string) string { return b.env[k] }, "")
	if err != nil {
		t.Fatal(err)
	}
	rdb := srv.Client(t)
	client, _ := newOneRoute(cfg.OneRoute)
	w := newWorker(rdb, client, nil, cfg, zerolog.Nop())
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	store := storage.New(rdb)
	deadline := time.Now().Add(time.Minute)
	var p campaigns.Progress
	for time.Now().Before(deadline) {
		if p, err = store.Progress(context.Background(), "detached-e2e"); err == nil && p.Final() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !p.Final() || p.Total != 20 || p.Sent != 20 || p.Delivered != 16 || p.Undelivered != 2 || p.DLRExpired != 2 || p.Invalid != 2 || p.Duplicates != 2 {
		t.Fatalf("got %+v", p)
	}
	if st := sb.Stats(); st.Duplicates != 0 || st.Accepted != 20 {
		t.Fatalf("sandbox %+v", st)
	}
}

// pause, resume and cancel change the state fleet-wide, follow the allowed
// transitions, and refuse the others with exit code 2.
func TestPauseResumeCancel(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := setup(t)
	b.env["REDIS_URL"] = srv.URL()
	b.env["ONEROUTE_API_KEY"] = "test_control"
	if code := b.run(t, "dispatch", "--offline", "--id", "ctl", "testdata/e2e/campaign.yaml"); code != 0 {
		t.Fatalf("dispatch: %d %s", code, b.stderr.String())
	}
	state := func() string {
		b.run(t, "status", "--json", "ctl")
		var p campaigns.Progress
		if err := json.Unmarshal(b.stdout.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		return string(p.State) + "/" + p.Reason
	}
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"pause", "--reason", "checking the copy", "ctl"}, 0, "paused/checking the copy"},
		{[]string{"pause", "ctl"}, exitBadInput, "paused/checking the copy"},
		{[]string{"resume", "--reason", "copy fixed", "ctl"}, 0, "running/copy fixed"},
		{[]string{"pause", "ctl"}, 0, "paused/by an operator"},
		{[]string{"resume", "ctl"}, 0, "running/resumed by an operator"},
		{[]string{"cancel", "ctl"}, 0, "cancelled/by an operator"},
		{[]string{"resume", "ctl"}, exitBadInput, "cancelled/by an operator"},
		{[]string{"cancel", "nope"}, exitBadInput, ""},
	}
	for _, st := range steps {
		if code := b.run(t, st.args...); code != st.code {
			t.Fatalf("%v: exit %d, want %d\n%s", st.args, code, st.code, b.stderr.String())
		}
		if st.want != "" {
			if got := state(); got != st.want {
				t.Fatalf("after %v: %s, want %s", st.args, got, st.want)
			}
		}
	}
}

// A template OneRoute refuses pauses the campaign with the reason; run stops
// and says how to resume, instead of waiting forever.
func TestRefusedTemplatePausesTheCampaign(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code := b.run(t, "run", "--sandbox", "--offline", "--timeout", "60s", "testdata/e2e/bad_template.yaml")
	if code != exitError || !strings.Contains(b.stderr.String(), "paused") || !strings.Contains(b.stderr.String(), "fanout resume") ||
		!strings.Contains(b.stderr.String(), "no_such_template") {
		t.Fatalf("exit %d, stderr:\n%s", code, b.stderr.String())
	}
}

// A spec without an id gets one derived from the spec and the file: the same
// dispatch run twice is one campaign, enqueued once.
func TestDispatchWithoutIDTwiceIsOneCampaign(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := setup(t)
	b.env["REDIS_URL"] = srv.URL()
	b.env["ONEROUTE_API_KEY"] = "test_noid"
	var ids []string
	var enqueued []float64
	for i := 0; i < 2; i++ {
		if code := b.run(t, "dispatch", "--offline", "--json", "testdata/e2e/campaign.yaml"); code != 0 {
			t.Fatalf("dispatch %d: exit %d\n%s", i, code, b.stderr.String())
		}
		var res map[string]any
		if err := json.Unmarshal(b.stdout.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res["id"].(string))
		enqueued = append(enqueued, res["enqueued"].(float64))
	}
	if ids[0] != ids[1] || enqueued[0] != 4 || enqueued[1] != 0 {
		t.Fatalf("ids %v, batches enqueued %v; want one id and 4 then 0", ids, enqueued)
	}
}
