package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
)

// chaos reports whether the long fault, crash and soak tests run
// (make chaos sets FANOUT_CHAOS=1).
func chaos() bool { return os.Getenv("FANOUT_CHAOS") == "1" }

// writeCampaign writes a personalised SMS campaign of n recipients whose
// numbers never end in 9 (so every delivery report becomes final).
func writeCampaign(t *testing.T, n int, extra string) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("phone,name\n")
	for i, k := 0, 0; k < n; i++ {
		num := fmt.Sprintf("0803%07d", 1000000+i)
		if strings.HasSuffix(num, "9") {
			continue
		}
		fmt.Fprintf(&b, "%s,Person %d\n", num, i)
		k++
	}
	if err := os.WriteFile(filepath.Join(dir, "r.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf("name: chaos\nchannel: sms\nchannel_id: %s\nmessage: \"Hello {{.name}}\"\nrecipients: r.csv\n%s", sandbox.SMSChannelID, extra)
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type chaosBundle struct {
	ctx   context.Context
	redis *redistest.Server
	rdb   *redis.Client
	store *storage.Store
	sb    *sandbox.Server
	api   *httptest.Server
}

func setupChaos(t *testing.T, o redistest.Options, dlrDelay time.Duration) *chaosBundle {
	t.Helper()
	srv := redistest.StartWith(t, o)
	rdb := srv.Client(t)
	sb := sandbox.New(sandbox.Options{DLRDelay: dlrDelay})
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	return &chaosBundle{ctx: context.Background(), redis: srv, rdb: rdb, store: storage.New(rdb), sb: sb, api: api}
}

// dispatch expands a spec file into the bundle's Redis.
func (c *chaosBundle) dispatch(t *testing.T, path string, batch int) dispatcher.Result {
	t.Helper()
	return c.dispatchWith(t, path, batch, asynq.NewClientFromRedisClient(c.rdb))
}

// dispatchWith is dispatch through enq.
func (c *chaosBundle) dispatchWith(t *testing.T, path string, batch int, enq dispatcher.Enqueuer) dispatcher.Result {
	t.Helper()
	spec, err := campaigns.LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	src, err := recipients.OpenSource(spec.RecipientsPath(), recipients.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	res, err := dispatcher.Dispatch(c.ctx, c.store, enq, spec, src, dispatcher.Options{BatchSize: batch, MaxAttempts: 20})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// waitFinal waits until the campaign is final or the deadline passes.
func (c *chaosBundle) waitFinal(t *testing.T, id string, within time.Duration) campaigns.Progress {
	t.Helper()
	deadline := time.Now().Add(within)
	var p campaigns.Progress
	for time.Now().Before(deadline) {
		var err error
		if p, err = c.store.Progress(c.ctx, id); err != nil {
			t.Fatal(err)
		}
		if p.Final() {
			return p
		}
		time.Sleep(100 * time.Millisecond)
	}
	counts := map[string]int{}
	c.store.Scan(c.ctx, id, func(e storage.Entry) error { counts[string(e.State)]++; return nil }) //nolint:errcheck // diagnostics for the t.Fatalf below: a partial count still helps
	t.Fatalf("campaign %s not final after %s: %+v\nledger: %v\nsandbox: %+v\n%s", id, within, p, counts, c.sb.Stats(), c.awaitedReport(id))
	return p
}

// awaitedReport says, for a campaign that did not finish, what its
// delivery-report sweep remembers and how the sandbox answers for a few of
// the rows still awaited (faults off), so a stall can be told apart from a
// report the sandbox never made final.
func (c *chaosBundle) awaitedReport(id string) string {
	var b strings.Builder
	w, err := c.store.LoadSweep(c.ctx, id)
	fmt.Fprintf(&b, "sweep: %+v (err %v)\n", w, err)
	st, err := c.store.DLRStatus(c.ctx, id)
	fmt.Fprintf(&b, "dlr status: %+v (err %v)\n", st, err)
	aw, err := c.store.Awaited(c.ctx, id)
	fmt.Fprintf(&b, "awaited in the index: %d (err %v)\n", len(aw), err)
	c.sb.SetFaults(sandbox.Faults{})
	for _, a := range aw[:min(len(aw), 5)] {
		req, _ := http.NewRequest(http.MethodGet, c.api.URL+"/api/public/dlr/"+a.ID+"/sms", nil)
		req.Header.Set("apiKey", sandbox.KeyPrefix+"chaos")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintf(&b, "row %d id %s: %v\n", a.Row, a.ID, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(&b, "row %d id %s: %d %s\n", a.Row, a.ID, resp.StatusCode, body)
	}
	return b.String()
}

// checkLedger asserts that the counters equal a recount of the ledger and
// that every recipient is final.
func (c *chaosBundle) checkLedger(t *testing.T, p campaigns.Progress) {
	t.Helper()
	counts := map[byte]int64{}
	if err := c.store.Scan(c.ctx, p.ID, func(e storage.Entry) error { counts[e.State]++; return nil }); err != nil {
		t.Fatal(err)
	}
	sent := counts['a'] + counts['d'] + counts['n'] + counts['e']
	if sent != p.Sent || counts['f'] != p.Failed || counts['u'] != p.Unknown || counts['x'] != p.Skipped ||
		counts['d'] != p.Delivered || counts['n'] != p.Undelivered || counts['e'] != p.DLRExpired {
		t.Errorf("ledger recount %v differs from counters %+v", counts, p)
	}
	if counts['s']+counts['c'] != 0 || p.Sent+p.Failed+p.Unknown+p.Skipped != p.Total {
		t.Errorf("not every recipient is final: %d claimed or sending, sent+failed+unknown+skipped = %d, total %d",
			counts['s']+counts['c'], p.Sent+p.Failed+p.Unknown+p.Skipped, p.Total)
	}
}

// Against a sandbox answering 10% 5xx, 10% 429 with Retry-After and 5%
// accepted-then-hanging sends, every recipient ends final, nothing is sent
// twice, the counters equal a recount of the ledger, and send requests stay
// within 1.5 times the messages. 10,000 recipients under make chaos; 600 in
// make test.
func TestSoakWithProviderFaults(t *testing.T) {
	t.Parallel()
	n := 600
	if chaos() {
		n = 10_000
	}
	c := setupChaos(t, redistest.Options{}, 100*time.Millisecond)
	c.sb.SetFaults(sandbox.Faults{ErrorRate: 0.10, ThrottleRate: 0.10, RetryAfterS: 1, HangRate: 0.05, HangMS: 2500})
	c.startWorkers(t, 2, fastOptions())
	start := time.Now()
	res := c.dispatch(t, writeCampaign(t, n, ""), 50)
	p := c.waitFinal(t, res.ID, soakWait())
	st := c.sb.Stats()
	t.Logf("soak: %d recipients in %s: sent %d failed %d unknown %d delivered %d undelivered %d; sandbox requests %d, send requests %d, accepted %d, duplicates %d, throttled %d, faults %d",
		n, time.Since(start).Round(time.Millisecond), p.Sent, p.Failed, p.Unknown, p.Delivered, p.Undelivered,
		st.Requests, st.SendRequests, st.Accepted, st.Duplicates, st.Throttled, st.Faults)
	c.checkLedger(t, p)
	if st.Duplicates != 0 {
		t.Errorf("sandbox saw %d duplicate messages, want 0", st.Duplicates)
	}
	if st.Accepted != p.Sent {
		t.Errorf("sandbox accepted %d messages, ledger says %d sent", st.Accepted, p.Sent)
	}
	if ratio := float64(st.SendRequests) / float64(n); ratio > 1.5 {
		t.Errorf("send requests %d for %d messages: %.2f per message, want at most 1.5", st.SendRequests, n, ratio)
	}
	if p.Total != int64(n) {
		t.Errorf("total %d, want %d", p.Total, n)
	}
	// Delivery reports read through the same faults: each outcome is the
	// sandbox's own, and only the messages it keeps pending expire.
	if p.Delivered != st.SMSStatus["delivered"] || p.Undelivered != st.SMSStatus["undelivered"] || p.DLRExpired != st.SMSStatus["pending"] {
		t.Errorf("delivered %d undelivered %d dlr_expired %d; the sandbox's outcomes: %v", p.Delivered, p.Undelivered, p.DLRExpired, st.SMSStatus)
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// fanoutBinary builds the fanout command once for the subprocess tests.
func fanoutBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fanout-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "fanout")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// startWorker runs `fanout worker` as a separate process.
func (c *chaosBundle) startWorker(t *testing.T, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(fanoutBinary(t), "worker")
	cmd.Env = append(os.Environ(), "REDIS_URL="+c.redis.URL(), "ONEROUTE_BASE_URL="+c.api.URL, "ONEROUTE_API_KEY=test_chaos",
		"LOG_FORMAT=json", "LOG_LEVEL=info", "FANOUT_POLL_INTERVAL=200ms", "FANOUT_DLR_INTERVAL=500ms")
	cmd.Env = append(cmd.Env, env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &logs
}

// SIGTERM while sends are in flight at a 5-second provider latency: the
// worker finishes and records them before it exits (ShutdownTimeout is
// longer than the request timeout), and a second worker finishes the rest:
// zero duplicates, nothing lost.
func TestSIGTERMDuringSlowSend(t *testing.T) {
	t.Parallel()
	c := setupChaos(t, redistest.Options{}, 100*time.Millisecond)
	c.sb.SetFaults(sandbox.Faults{LatencyMS: 5000})
	res := c.dispatch(t, writeCampaign(t, 40, ""), 10)
	w1, logs := c.startWorker(t, "ONEROUTE_TIMEOUT=8s", "FANOUT_CONCURRENCY=2")
	testwait.For(t, "a send in flight", 30*time.Second, func() bool { return c.sb.Stats().SendRequests > 0 })
	time.Sleep(500 * time.Millisecond) // well inside the 5 s latency
	sent := time.Now()
	w1.Process.Signal(syscall.SIGTERM)
	err := w1.Wait()
	took := time.Since(sent)
	if err != nil {
		t.Fatalf("worker exit: %v\n%s", err, logs)
	}
	if took > 18*time.Second+2*time.Second {
		t.Errorf("worker took %s to stop, want under ShutdownTimeout + 2s", took)
	}
	mid, _ := c.store.Progress(c.ctx, res.ID)
	t.Logf("SIGTERM: worker stopped %s after the signal with %d of %d sent", took.Round(time.Millisecond), mid.Sent, mid.Total)
	if mid.Sent == 0 {
		t.Errorf("the in-flight sends were not recorded before exit")
	}
	c.sb.SetFaults(sandbox.Faults{})
	c.startWorker(t)
	p := c.waitFinal(t, res.ID, 2*time.Minute)
	c.checkLedger(t, p)
	if st := c.sb.Stats(); st.Duplicates != 0 || st.Accepted != int64(res.Total) || p.Sent != int64(res.Total) {
		t.Errorf("accepted %d duplicates %d sent %d, want %d 0 %d", st.Accepted, st.Duplicates, p.Sent, res.Total, res.Total)
	}
}

// SIGKILL of a worker while a batch's sends were accepted and their answers
// still pending: after asynq recovers the task, reconciliation finds the
// accepted ones and sends only the rest. Zero duplicates, nothing lost.
// It waits for asynq's lease expiry and recoverer (30-90 s): make chaos only.
func TestSIGKILLMidBatch(t *testing.T) {
	if !chaos() {
		t.Skip("slow (waits for asynq's orphan recovery); run with make chaos")
	}
	t.Parallel()
	c := setupChaos(t, redistest.Options{RequireReal: true, AOF: true}, 100*time.Millisecond)
	c.sb.SetFaults(sandbox.Faults{HangRate: 1, HangMS: 60_000})
	res := c.dispatch(t, writeCampaign(t, 50, ""), 50) // one batch: 50 personalised sends, 16 at a time
	w1, _ := c.startWorker(t, "ONEROUTE_TIMEOUT=20s")
	testwait.For(t, "sends accepted and hanging", 30*time.Second, func() bool { return c.sb.Stats().Accepted >= 10 })
	w1.Process.Kill()
	w1.Wait()
	killedAt := c.sb.Stats().Accepted
	t.Logf("SIGKILL with %d of %d messages accepted and unanswered", killedAt, res.Total)
	c.sb.SetFaults(sandbox.Faults{})
	start := time.Now()
	c.startWorker(t, "ONEROUTE_TIMEOUT=5s")
	p := c.waitFinal(t, res.ID, 4*time.Minute)
	t.Logf("recovered and finished %s after the kill", time.Since(start).Round(time.Second))
	c.checkLedger(t, p)
	st := c.sb.Stats()
	if st.Duplicates != 0 || st.Accepted != int64(res.Total) || p.Sent != int64(res.Total) || p.Unknown != 0 {
		t.Errorf("accepted %d duplicates %d sent %d unknown %d, want %d 0 %d 0", st.Accepted, st.Duplicates, p.Sent, p.Unknown, res.Total, res.Total)
	}
}

func soakWait() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("FANOUT_SOAK_WAIT")); err == nil {
		return d
	}
	return 10 * time.Minute
}
