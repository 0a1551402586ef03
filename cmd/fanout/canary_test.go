package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/monitor"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

// The canary sweep (issue 13 item 7): a campaign sent with a canary API key
// through a Redis with a canary password, against a sandbox that fails a
// share of the requests (5xx, 429), and a second run whose key
// OneRoute refuses. Neither secret may appear anywhere a user or another
// system can read: the commands' output and logs (debug level), status and
// list, every key and value in Redis (task payloads included), the
// monitor's pages and API, and the Asynq UI's API for every task state.
func TestCanarySecretsAppearNowhere(t *testing.T) {
	t.Parallel()
	const (
		key     = "test_canaryKey_5e1b77d2"
		badKey  = "live_canaryBad_0c94e1aa"
		redisPW = "canaryRedisPw_8d31f0"
	)
	canaries := []string{key, badKey, redisPW, "canaryKey", "canaryBad", "canaryRedisPw"}
	mr := miniredis.RunT(t)
	mr.RequireAuth(redisPW)
	sb := sandbox.New(sandbox.Options{})
	sb.SetFaults(sandbox.Faults{ErrorRate: 0.1, ThrottleRate: 0.05, RetryAfterS: 1})
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	t.Cleanup(sb.Close)

	var seen strings.Builder
	b := setup(t)
	b.env = map[string]string{"LOG_FORMAT": "json", "LOG_LEVEL": "debug", "REDIS_URL": "redis://:" + redisPW + "@" + mr.Addr() + "/0",
		"ONEROUTE_BASE_URL": api.URL, "ONEROUTE_API_KEY": key}
	if code := b.run(t, "run", "--json", "--dlr-max-age", "2s", "--timeout", "90s", "testdata/e2e/campaign.yaml"); code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, b.stderr.String())
	}
	seen.WriteString(b.stdout.String() + b.stderr.String())
	for _, args := range [][]string{{"list", "--json"}, {"list"}, {"status", "--json"}, {"healthcheck", "http://127.0.0.1:1/"}} {
		b.run(t, args...)
		seen.WriteString(b.stdout.String() + b.stderr.String())
	}
	// A key OneRoute refuses: the preflight's error path, and the send's.
	b.env["ONEROUTE_API_KEY"] = badKey
	if code := b.run(t, "run", "--timeout", "30s", "testdata/e2e/campaign.yaml"); code == exitOK {
		t.Errorf("a refused key: exit 0")
	}
	seen.WriteString(b.stdout.String() + b.stderr.String())
	// The send path with the refused key: another campaign (its own id).
	dir := t.TempDir()
	spec, _ := os.ReadFile("testdata/e2e/campaign.yaml")
	csv, _ := os.ReadFile("testdata/e2e/recipients.csv")
	if err := os.WriteFile(filepath.Join(dir, "recipients.csv"), csv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), append([]byte("id: canary-refused\n"), spec...), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := b.run(t, "run", "--offline", "--timeout", "30s", filepath.Join(dir, "c.yaml")); code == exitOK {
		t.Errorf("a refused key, --offline: exit 0\n%s", grepNotDebug(b.stdout.String()+b.stderr.String()))
	}
	seen.WriteString(b.stdout.String() + b.stderr.String())
	if !strings.Contains(seen.String(), `"sent"`) {
		t.Fatalf("the sweep saw no campaign output: %s", seen.String())
	}

	// Every key and value in Redis: campaigns, ledgers, copies, tasks.
	mr.RequireAuth("") // read it all without the password
	seen.WriteString(mr.Dump())
	mr.RequireAuth(redisPW)

	// The monitor: dashboard, JSON API and the Asynq UI's API.
	cfg, err := config.Load(func(k string) string { return b.env[k] }, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.OneRoute.APIKey = config.Secret(key)
	rdb, err := openRedis(context.Background(), cfg.Redis, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	app, closeApp, err := newMonitor(rdb, cfg, monitor.Auth{Operator: &testOperator, Viewer: &testViewer}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeApp)
	hs := httptest.NewServer(app.handler)
	t.Cleanup(hs.Close)
	paths := []string{"/", "/api/campaigns", "/metrics", "/monitoring/", "/monitoring/api/queues", "/monitoring/api/servers", "/monitoring/api/redis_info"}
	for q := range cfg.Worker.Queues {
		for _, state := range []string{"active", "pending", "scheduled", "retry", "archived", "completed", "aggregating"} {
			paths = append(paths, "/monitoring/api/queues/"+q+"/"+state+"_tasks?page=1&size=100")
		}
	}
	ok := 0
	for _, p := range paths {
		req, _ := http.NewRequest(http.MethodGet, hs.URL+p, nil)
		req.SetBasicAuth(testOperator.User, testOperator.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ok++
		}
		seen.WriteString(p + "\n" + string(body))
	}
	if ok < len(paths)/2 {
		t.Errorf("only %d of %d monitor pages answered 200: the sweep read little", ok, len(paths))
	}
	all := seen.String()
	for _, c := range canaries {
		if i := strings.Index(all, c); i >= 0 {
			t.Errorf("secret %q appears: …%s…", c, all[max(0, i-200):min(len(all), i+100)])
		}
	}
	t.Logf("canary sweep: %d bytes of output, Redis contents and %d monitor pages read; no secret found", len(all), len(paths))
}

func grepNotDebug(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, `"level":"debug"`) && !strings.Contains(l, `"component":"asynq"`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
