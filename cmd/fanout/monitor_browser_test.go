package main

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/testwait"
)

// chromium finds Debian's chromium (FANOUT_CHROMIUM names another
// binary). In CI (CI=true) a missing browser fails the test: CI installs
// it (.ci/run), so its absence is a broken setup, not a reason to pass.
// Elsewhere the test is skipped with the command that installs it.
func chromium(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome"}
	if p := os.Getenv("FANOUT_CHROMIUM"); p != "" {
		names = []string{p}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" || os.Getenv("FANOUT_E2E") != "" {
		t.Fatalf("no Chromium found (looked for %s): install it with apt-get install -y chromium", strings.Join(names, ", "))
	}
	t.Skip("no Chromium: apt-get install -y chromium to run the browser test (CI and make e2e fail instead of skipping)")
	return ""
}

// screenshotDir is where the browser test saves its screenshots:
// FANOUT_E2E_OUT (make e2e sets e2e-out), else the test's temporary folder.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FANOUT_E2E_OUT")
	if dir == "" {
		return t.TempDir()
	}
	if !filepath.IsAbs(dir) {
		// go test runs in the package folder; make e2e means the repository's.
		dir = filepath.Join("..", "..", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// In a real browser, against a campaign a worker is sending: the dashboard
// lists it with a progress bar whose segments are the campaign's counters,
// its page's Pause button pauses it in Redis (the same call as fanout
// pause), and the Asynq UI lists fanout's queues and shows task payloads
// as summaries.
func TestMonitorBrowser(t *testing.T) {
	exe := chromium(t)
	b := setupMonitor(t, 400, true, 10)
	out := screenshotDir(t)
	id := b.spec.ID
	ctx := context.Background()
	testwait.For(t, "the worker to send some of the campaign", 60*time.Second, func() bool {
		p, err := b.store.Progress(ctx, id)
		return err == nil && p.Sent >= 10
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1440, 900), chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// The first call starts the browser and must not carry a timeout, which
	// would stop it; the steps after it run under one.
	cred := base64.StdEncoding.EncodeToString([]byte(testOperator.User + ":" + testOperator.Password))
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	if _, err := chromedp.Call(bctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": "Basic " + cred}}); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(out, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	row := `tr[data-campaign="` + id + `"]`
	step("load the dashboard", chromedp.Navigate(b.url+"/"), chromedp.WaitVisible(chromedp.CSS(row+` .bar`)))
	segs, err := chromedp.Run(tctx, chromedp.AttributesAll(chromedp.CSSAll(row+` .bar span`)))
	if err != nil {
		t.Fatal(err)
	}
	shot("dashboard.png")
	// The bar's segments are the counters: what was sent is there, and
	// so is what remains, since 400 recipients at 10/s take 40 s.
	counts := map[string]int64{}
	for _, s := range segs {
		n, _ := strconv.ParseInt(s["data-count"], 10, 64)
		counts[s["data-state"]] = n
		if !strings.HasPrefix(s["style"], "width:") {
			t.Errorf("segment %s has no width: %q", s["data-state"], s["style"])
		}
	}
	if counts["sent"]+counts["delivered"] == 0 || counts["remaining"] == 0 {
		t.Errorf("progress bar segments %v: want sent or delivered, and remaining", counts)
	}

	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(tctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			shot("failed.png")
			t.Fatalf("%s: %v (see failed.png in %s)", what, err, out)
		}
	}
	step("open the Asynq UI", chromedp.Navigate(b.url+"/monitoring/"))
	poll("the Asynq UI to list fanout's queues", `document.body.innerText.includes("sms") && document.body.innerText.includes("dlr")`)
	shot("asynq-queues.png")
	step("open the sms queue", chromedp.Navigate(b.url+"/monitoring/queues/sms?status=pending"))
	poll("the task list to show payload summaries", `document.body.innerText.includes("`+id+` · batch")`)
	shot("asynq-tasks.png")
	text, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	if m := phoneOrEmail.FindString(text); m != "" {
		t.Errorf("the Asynq UI's task page shows %q", m)
	}
	step("open the campaign", chromedp.Navigate(b.url+"/campaigns/"+id), chromedp.WaitVisible(chromedp.ID("pause")))
	shot("campaign-running.png")
	step("click pause", chromedp.Click(chromedp.ID("pause")), chromedp.WaitVisible(chromedp.ID("resume")))
	state, err := chromedp.Run(tctx, chromedp.Text(chromedp.ID("state")))
	if err != nil {
		t.Fatal(err)
	}
	shot("campaign-paused.png")
	if state != string(campaigns.StatePaused) {
		t.Errorf("page state after the click = %q, want paused", state)
	}
	p, err := b.store.Progress(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if p.State != campaigns.StatePaused || !strings.Contains(p.Reason, testOperator.User) {
		t.Errorf("campaign after the click: state %s, reason %q; want paused by %s", p.State, p.Reason, testOperator.User)
	}

	t.Logf("screenshots in %s", out)
}
