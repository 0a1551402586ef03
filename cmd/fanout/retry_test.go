package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/worker"
)

// permanentReason is what the fault proxy answers for a permanent number:
// a per-recipient refusal that a spreadsheet would run as a formula.
const permanentReason = `=HYPERLINK("http://evil.example") refused`

// numberFaults sits in front of the sandbox and fails SMS sends by
// recipient, deterministically: a permanent number is refused (a failed
// per-recipient result), a temporary one gets a 500 while temporary faults
// are on. It counts, per number, every send request and the ones it let
// through to the sandbox.
type numberFaults struct {
	next http.Handler
	perm func(i int) bool
	temp func(i int) bool

	mu       sync.Mutex
	tempOn   bool
	requests map[int]int // number index -> send requests
	passed   map[int]int // number index -> requests the sandbox got
}

// numberIndex is i of writeCampaign's number 0803<1000000+i>.
func numberIndex(to string) int {
	var d []byte
	for i := 0; i < len(to); i++ {
		if to[i] >= '0' && to[i] <= '9' {
			d = append(d, to[i])
		}
	}
	n, _ := strconv.Atoi(string(d[len(d)-7:]))
	return n - 1000000
}

func (f *numberFaults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/sms") {
		f.next.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req struct {
		Recipients []string `json:"recipients"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Recipients) != 1 {
		http.Error(w, "the fault proxy wants one recipient a request", http.StatusTeapot)
		return
	}
	i := numberIndex(req.Recipients[0])
	f.mu.Lock()
	f.requests[i]++
	temp := f.tempOn && f.temp(i)
	if !temp && !f.perm(i) {
		f.passed[i]++
	}
	f.mu.Unlock()
	switch {
	case f.perm(i):
		res, _ := json.Marshal(map[string]any{"data": []map[string]string{{"status": "failed", "response": permanentReason}},
			"message": "SMS processed successfully", "success": true})
		w.Header().Set("Content-Type", "application/json")
		w.Write(res)
	case temp:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"success":false,"message":"Internal server error"}`))
	default:
		f.next.ServeHTTP(w, r)
	}
}

// counts returns and clears the per-number counters.
func (f *numberFaults) counts() (requests, passed map[int]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	requests, passed = f.requests, f.passed
	f.requests, f.passed = map[int]int{}, map[int]int{}
	return requests, passed
}

// A campaign of 200 SMS where 5% of the numbers are refused for good and
// 5% get 500s until the attempts run out (11 each) ends completed with 22
// failed. retry-failed then re-sends exactly the 11 temporary ones: each reaches
// OneRoute exactly once more, no permanent or successful number is asked
// again, nothing is sent twice, and the counters equal a recount of the
// ledger. A dry run before changes nothing; a second retry finds nothing
// retryable. report then lists every recipient exactly once, in CSV and
// NDJSON, with the permanent reason escaped in CSV.
func TestRetryFailedResendsExactlyTheTemporaryFailures(t *testing.T) {
	t.Parallel()
	c := setupChaos(t, redistest.Options{}, 100*time.Millisecond)
	faults := &numberFaults{next: c.sb, tempOn: true, requests: map[int]int{}, passed: map[int]int{},
		perm: func(i int) bool { return i%20 == 7 }, temp: func(i int) bool { return i%20 == 13 }}
	c.api = httptest.NewServer(faults)
	t.Cleanup(c.api.Close)
	notices := &noticeReceiver{}
	hook := httptest.NewServer(notices)
	t.Cleanup(hook.Close)
	opts := fastOptions()
	opts.MaxAttempts = 3
	opts.NotifySecret = "notify-secret"
	c.startWorkers(t, 2, opts)
	aud := worker.NewAuditor(c.rdb, c.store, zerolog.Nop(), worker.AuditOptions{Interval: 200 * time.Millisecond, RequestTimeout: opts.RequestTimeout})
	actx, stopAudit := context.WithCancel(c.ctx)
	audited := make(chan struct{})
	go func() { defer close(audited); aud.Run(actx) }() //nolint:errcheck // returns nil when actx ends
	t.Cleanup(func() { stopAudit(); <-audited })
	const n = 200
	specPath := writeCampaign(t, n, "notify_url: "+hook.URL+"/done\n")
	res := c.dispatchKeeping(t, specPath, 50)

	p := c.waitFinal(t, res.ID, 60*time.Second)
	c.checkLedger(t, p)
	requests, _ := faults.counts()
	var perm, temp []int
	for i := range requests {
		switch {
		case faults.perm(i):
			perm = append(perm, i)
		case faults.temp(i):
			temp = append(temp, i)
		}
	}
	// About 5% each (numbers ending in 9 are left out of the file).
	if len(requests) != n || len(perm) < n/20 || len(perm) > n/20+2 || len(temp) < n/20 || len(temp) > n/20+2 {
		t.Fatalf("first run asked for %d numbers (%d permanent, %d temporary), want %d (about %d each)", len(requests), len(perm), len(temp), n, n/20)
	}
	for _, i := range temp {
		if requests[i] != opts.MaxAttempts {
			t.Errorf("temporary number %d was tried %d times in the first run, want %d", i, requests[i], opts.MaxAttempts)
		}
	}
	if p.State != campaigns.StateCompleted || p.Failed != int64(len(perm)+len(temp)) || p.Sent != int64(n-len(perm)-len(temp)) {
		t.Fatalf("first run: state %s sent %d failed %d, want completed %d %d", p.State, p.Sent, p.Failed, n-len(perm)-len(temp), len(perm)+len(temp))
	}

	// The completion is notified once, signed.
	testwait.For(t, "the completion notice", 10*time.Second, func() bool { return notices.count() >= 1 })
	notices.check(t, 0, []byte(opts.NotifySecret), res.ID, 0, p.Failed)

	b := setup(t)
	b.env["REDIS_URL"] = c.redis.URL()
	// A dry run counts and changes nothing.
	if code := b.run(t, "retry-failed", res.ID, "--dry-run", "--json"); code != 0 {
		t.Fatalf("retry-failed --dry-run: exit %d: %s", code, b.stderr.String())
	}
	var dry worker.RetryResult
	if err := json.Unmarshal(b.stdout.Bytes(), &dry); err != nil {
		t.Fatal(err)
	}
	if dry.Retried != len(temp) || dry.Failed != len(perm)+len(temp) || dry.Kept[permanentReason] != len(perm) || !dry.DryRun {
		t.Errorf("dry run = %+v, want %d retried of %d failed, %d kept for %q", dry, len(temp), len(perm)+len(temp), len(perm), permanentReason)
	}
	if q, _ := c.store.Progress(c.ctx, res.ID); q.State != campaigns.StateCompleted || q.Failed != p.Failed {
		t.Errorf("after a dry run: state %s failed %d, want completed %d", q.State, q.Failed, p.Failed)
	}

	faults.mu.Lock()
	faults.tempOn = false // OneRoute is healthy again
	faults.mu.Unlock()
	if code := b.run(t, "retry-failed", res.ID, "--json"); code != 0 {
		t.Fatalf("retry-failed: exit %d: %s", code, b.stderr.String())
	}
	var got worker.RetryResult
	if err := json.Unmarshal(b.stdout.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Retried != len(temp) || got.Round != 1 || got.NoSource != 0 || got.Kept[permanentReason] != len(perm) {
		t.Errorf("retry-failed = %+v, want %d retried in round 1, %d kept", got, len(temp), len(perm))
	}
	p = c.waitFinal(t, res.ID, 60*time.Second)
	c.checkLedger(t, p)
	requests, passed := faults.counts()
	for _, i := range temp {
		if requests[i] != 1 || passed[i] != 1 {
			t.Errorf("temporary number %d: %d requests (%d reached OneRoute) in the retry, want 1", i, requests[i], passed[i])
		}
		delete(requests, i)
	}
	if len(requests) != 0 {
		t.Errorf("the retry asked OneRoute for numbers that were not temporary failures: %v", requests)
	}
	if p.State != campaigns.StateCompleted || p.Failed != int64(len(perm)) || p.Sent != int64(n-len(perm)) {
		t.Errorf("after the retry: state %s sent %d failed %d, want completed %d %d", p.State, p.Sent, p.Failed, n-len(perm), len(perm))
	}
	// The second completion is notified once more, as retry 1.
	testwait.For(t, "the second completion notice", 10*time.Second, func() bool { return notices.count() >= 2 })
	notices.check(t, 1, []byte(opts.NotifySecret), res.ID, 1, p.Failed)
	testwait.For(t, "the auditor to drop the completed campaign", 10*time.Second, func() bool {
		ids, _ := c.store.Audited(c.ctx)
		return !slices.Contains(ids, res.ID)
	})
	if k := notices.count(); k != 2 {
		t.Errorf("%d completion notices, want 2 (one per completion)", k)
	}
	if st := c.sb.Stats(); st.Duplicates != 0 || st.Accepted != int64(n-len(perm)) {
		t.Errorf("sandbox accepted %d with %d duplicates, want %d and 0", st.Accepted, st.Duplicates, n-len(perm))
	}
	why, err := c.rdb.HGetAll(c.ctx, "fanout:{"+res.ID+"}:why").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(why) != 1 || why[permanentReason] != strconv.Itoa(len(perm)) {
		t.Errorf("failure reasons after the retry = %v, want only %q: %d", why, permanentReason, len(perm))
	}

	// Nothing retryable is left: a second retry sends nothing.
	if code := b.run(t, "retry-failed", res.ID, "--json"); code != 0 {
		t.Fatalf("second retry-failed: exit %d: %s", code, b.stderr.String())
	}
	var again worker.RetryResult
	if err := json.Unmarshal(b.stdout.Bytes(), &again); err != nil {
		t.Fatal(err)
	}
	if again.Retried != 0 || again.Batches != 0 {
		t.Errorf("second retry-failed = %+v, want nothing retried", again)
	}

	// --reason retries permanent failures too, as round 2: each permanent
	// number is asked once more (and refused again), nobody else.
	if code := b.run(t, "retry-failed", res.ID, "--reason", "=HYPERLINK", "--json"); code != 0 {
		t.Fatalf("retry-failed --reason: exit %d: %s", code, b.stderr.String())
	}
	var byReason worker.RetryResult
	if err := json.Unmarshal(b.stdout.Bytes(), &byReason); err != nil {
		t.Fatal(err)
	}
	if byReason.Retried != len(perm) || byReason.Round != 2 {
		t.Errorf("retry-failed --reason = %+v, want %d retried in round 2", byReason, len(perm))
	}
	p = c.waitFinal(t, res.ID, 60*time.Second)
	c.checkLedger(t, p)
	requests, _ = faults.counts()
	for _, i := range perm {
		if requests[i] != 1 {
			t.Errorf("permanent number %d: %d requests in the --reason retry, want 1", i, requests[i])
		}
		delete(requests, i)
	}
	if len(requests) != 0 || p.Failed != int64(len(perm)) || p.Retries != 2 {
		t.Errorf("--reason retry asked others %v; failed %d retries %d, want none, %d, 2", requests, p.Failed, p.Retries, len(perm))
	}

	// report: every recipient once, in both formats.
	csvPath := filepath.Join(filepath.Dir(specPath), "r.csv")
	if code := b.run(t, "report", res.ID, "--format", "ndjson", "--recipients", csvPath); code != 0 {
		t.Fatalf("report --format ndjson: exit %d: %s", code, b.stderr.String())
	}
	seen := map[int]reportLine{}
	sc := bufio.NewScanner(&b.stdout)
	for sc.Scan() {
		var l reportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("ndjson line %q: %v", sc.Text(), err)
		}
		if _, dup := seen[l.Row]; dup {
			t.Errorf("row %d listed twice", l.Row)
		}
		seen[l.Row] = l
	}
	if len(seen) != n {
		t.Errorf("ndjson report lists %d rows, want %d", len(seen), n)
	}
	states := map[string]int{}
	for _, l := range seen {
		states[l.State]++
		i := numberIndex(l.To)
		switch {
		case l.To == "":
			t.Errorf("row %d has no address", l.Row)
		case faults.perm(i):
			if l.State != "failed" || l.Reason != permanentReason || l.Retries != 1 {
				t.Errorf("permanent row %d: %+v", l.Row, l)
			}
		case faults.temp(i):
			if l.Retries != 1 || l.ProviderID == "" {
				t.Errorf("temporary row %d: %+v, want retried once and sent", l.Row, l)
			}
		default:
			if l.Retries != 0 || l.ProviderID == "" || l.State == "failed" {
				t.Errorf("row %d: %+v, want sent, never retried", l.Row, l)
			}
		}
	}
	if states["failed"] != len(perm) {
		t.Errorf("report states %v, want %d failed", states, len(perm))
	}

	out := filepath.Join(t.TempDir(), "report.csv")
	if code := b.run(t, "report", res.ID, "--format", "csv", "--out", out); code != 0 {
		t.Fatalf("report --format csv: exit %d: %s", code, b.stderr.String())
	}
	recs := readCSV(t, out)
	if len(recs) != n+1 || strings.Join(recs[0], ",") != strings.Join(reportHeader, ",") {
		t.Fatalf("csv report has %d records (header %v), want %d and %v", len(recs), recs[0], n+1, reportHeader)
	}
	rows := map[string]bool{}
	escaped := 0
	for _, r := range recs[1:] {
		if rows[r[0]] {
			t.Errorf("csv row %s listed twice", r[0])
		}
		rows[r[0]] = true
		if strings.HasPrefix(r[4], "=") {
			t.Errorf("csv row %s: reason %q would run as a formula", r[0], r[4])
		}
		if strings.HasPrefix(r[4], "'=") {
			escaped++
		}
	}
	if escaped != len(perm) {
		t.Errorf("%d escaped reasons in the csv report, want %d", escaped, len(perm))
	}

	if code := b.run(t, "report", "nosuchcampaign"); code == 0 || !strings.Contains(b.stderr.String(), "no campaign") {
		t.Errorf("report of an unknown campaign: exit %d, stderr %q; want non-zero and a clear message", code, b.stderr.String())
	}
	if code := b.run(t, "retry-failed", "nosuchcampaign"); code == 0 || !strings.Contains(b.stderr.String(), "no campaign") {
		t.Errorf("retry-failed of an unknown campaign: exit %d, stderr %q; want non-zero and a clear message", code, b.stderr.String())
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// noticeReceiver records the completion notices posted to notify_url.
type noticeReceiver struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
}

func (r *noticeReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bodies = append(r.bodies, b)
	r.sigs = append(r.sigs, req.Header.Get(worker.SignatureHeader))
}

func (r *noticeReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// check asserts notice i is signed with secret over its exact body and
// says campaign id completed after retries rounds with failed failures.
func (r *noticeReceiver) check(t *testing.T, i int, secret []byte, id string, retries int, failed int64) {
	t.Helper()
	r.mu.Lock()
	body, sig := r.bodies[i], r.sigs[i]
	r.mu.Unlock()
	mac := hmac.New(sha512.New, secret)
	mac.Write(body)
	if want := hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(sig), []byte(want)) {
		t.Errorf("notice %d: signature %q does not match its body", i, sig)
	}
	var nt worker.Notice
	if err := json.Unmarshal(body, &nt); err != nil {
		t.Fatal(err)
	}
	if nt.Event != "campaign.completed" || nt.Campaign.ID != id || nt.Campaign.State != campaigns.StateCompleted || nt.Retries != retries || nt.Campaign.Failed != failed {
		t.Errorf("notice %d = event %s id %s state %s retries %d failed %d, want campaign.completed %s completed %d %d",
			i, nt.Event, nt.Campaign.ID, nt.Campaign.State, nt.Retries, nt.Campaign.Failed, id, retries, failed)
	}
}
