package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/internal/redistest"
)

// Counts are written with their noun in the right number.
func TestPlural(t *testing.T) {
	t.Parallel()
	cases := []struct {
		n    int
		want string
	}{{0, "0 batches"}, {1, "1 batch"}, {2, "2 batches"}}
	for _, tc := range cases {
		if got := plural(tc.n, "batch", "batches"); got != tc.want {
			t.Errorf("plural(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := plural(int64(1), "row was", "rows were"); got != "1 row was" {
		t.Errorf("plural(int64 1) = %q", got)
	}
}

// A dry run's summary line reads correctly for one of a kind and for a
// campaign with no rate limit.
func TestDryRunSummaryText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		recipients string
		want       string
	}{
		{"one of each", "phone\n08031234561\n08031234561\n",
			"dry run of tpl: 2 rows, 1 valid, 0 invalid, 1 duplicate, 0 suppressed, 1 batch, no rate limit set\n"},
		{"several", threeRecipients,
			"dry run of tpl: 3 rows, 3 valid, 0 invalid, 0 duplicates, 0 suppressed, 2 batches, no rate limit set\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := writeSpec(t, "Hi", tc.recipients)
			code, out, errOut := runDispatch(t, map[string]string{"LOG_LEVEL": "warn"}, "", "dispatch", "--dry-run", "--offline", spec)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if diff := cmp.Diff(tc.want, out); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("rate limited", func(t *testing.T) {
		t.Parallel()
		code, out, errOut := runDispatch(t, map[string]string{"LOG_LEVEL": "warn"}, "",
			"dispatch", "--dry-run", "--offline", "--suppress", "testdata/dispatch/suppress.txt", "testdata/dispatch/messy.yaml")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		want := "dry run of messy: 11 rows, 4 valid, 5 invalid, 1 duplicate, 1 suppressed, 2 batches, sending time at the rate limits 1s\n"
		if diff := cmp.Diff(want, out); diff != "" {
			t.Errorf("stdout (-want +got):\n%s", diff)
		}
	})
}

// The summary of an enqueueing dispatch, on standard error, gets its
// plurals right, including the refused rows and the resumed batches.
func TestDispatchSummaryText(t *testing.T) {
	t.Parallel()
	noLimit := &dispatcher.Estimate{Bound: "none", Human: "no rate limit"}
	cases := []struct {
		name  string
		res   dispatcher.Result
		final campaigns.State
		want  string
	}{
		{"ones", dispatcher.Result{ID: "c1", Total: 1, Batches: 1, Invalid: 1, Duplicates: 1, Resumed: 1, Estimate: noLimit}, "",
			"enqueued 1 recipient in 1 batch (1 invalid, 1 duplicate, 0 suppressed, no rate limit set; 1 batch was enqueued by an earlier run); follow it with: fanout status c1\n" +
				"1 row was refused: see which and why with --rejects FILE.csv (or --dry-run --rejects FILE.csv)\n"},
		{"many", dispatcher.Result{ID: "c1", Total: 5, Batches: 3, Invalid: 2, Duplicates: 2, Resumed: 2,
			Estimate: &dispatcher.Estimate{Human: "3s", Limit: campaigns.Rate{PerSecond: 1}}}, "",
			"enqueued 5 recipients in 3 batches (2 invalid, 2 duplicates, 0 suppressed, sending time at the rate limits 3s; 2 batches were enqueued by an earlier run); follow it with: fanout status c1\n" +
				"2 rows were refused: see which and why with --rejects FILE.csv (or --dry-run --rejects FILE.csv)\n"},
		{"already completed", dispatcher.Result{ID: "c1", Total: 11, Batches: 3, Resumed: 3}, campaigns.StateCompleted,
			"campaign c1 is already completed: nothing enqueued (an earlier dispatch enqueued its 11 recipients); see it with: fanout status c1\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			e := &env{stdout: &stdout, stderr: &stderr, stdin: strings.NewReader("")}
			if err := printDispatch(e, dispatchArgs{}, tc.res, false, tc.final); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff("c1\n", stdout.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, stderr.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// status writes "1 duplicate", not "1 duplicates".
func TestStatusRefusedLine(t *testing.T) {
	t.Parallel()
	var w bytes.Buffer
	printProgress(&w, campaigns.Progress{ID: "c1", Invalid: 1, Duplicates: 1, Suppressed: 1})
	if want := "refused    1 invalid, 1 duplicate, 1 suppressed\n"; !strings.Contains(w.String(), want) {
		t.Errorf("no %q in:\n%s", want, w.String())
	}
}

// The dispatch progress shows the bytes read with a unit and the
// percentage once.
func TestProgressLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		res        dispatcher.Result
		rate       float64
		done, size int64
		want       string
	}{
		{"known size", dispatcher.Result{Rows: 125000, Valid: 124990, Invalid: 10}, 51234.7, 12_345_678, 49_382_712,
			"  [#####...............] 12.3 MB of 49.4 MB  25%  125,000 rows  51,234 rows/s  124990 valid  10 invalid"},
		{"small file", dispatcher.Result{Rows: 1, Valid: 1}, 1, 512, 2048,
			"  [#####...............] 512 B of 2.0 KB  25%  1 row  1 rows/s  1 valid  0 invalid"},
		{"standard input", dispatcher.Result{Rows: 2, Valid: 2}, 2, 100, 0,
			"  2 rows  2 rows/s  2 valid  0 invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, progressLine(tc.res, tc.rate, tc.done, tc.size)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got := progressLine(tc.res, tc.rate, tc.done, tc.size); strings.Count(got, "%") > 1 {
				t.Errorf("percentage shown %d times: %q", strings.Count(got, "%"), got)
			}
		})
	}
}

// Sizes get a decimal unit.
func TestByteSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 KB", 1_500_000: "1.5 MB", 2_000_000_000: "2.0 GB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// Configuration errors start on the command's line, with every problem
// indented below: no blank first line.
func TestConfigErrorLayout(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"two problems", map[string]string{"FANOUT_CONCURRENCY": "x", "REDIS_URL": "foo"}, []string{"worker"},
			"fanout worker: configuration:\n" +
				"  FANOUT_CONCURRENCY=\"x\": want a whole number\n" +
				"  REDIS_URL \"foo\": want redis://host:port/db or rediss://host:port/db\n"},
		{"one problem", map[string]string{"FANOUT_CONCURRENCY": "x"}, []string{"status", "c1"},
			"fanout status: configuration:\n" +
				"  FANOUT_CONCURRENCY=\"x\": want a whole number\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runDispatch(t, tc.env, "", tc.args...)
			if code != exitBadInput {
				t.Errorf("exit %d, want 2", code)
			}
			if diff := cmp.Diff(tc.want, errOut); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if out != "" {
				t.Errorf("stdout = %q", out)
			}
		})
	}
}

// A list of problems without a heading is indented below the command.
func TestIndentLines(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"one line":                 "one line",
		"configuration:\na\nb":     "configuration:\n  a\n  b",
		"f.yaml:1: x\nf.yaml:2: y": "\n  f.yaml:1: x\n  f.yaml:2: y",
	}
	for in, want := range cases {
		if diff := cmp.Diff(want, indentLines(in)); diff != "" {
			t.Errorf("indentLines(%q) (-want +got):\n%s", in, diff)
		}
	}
}

// Dispatching a cancelled campaign again says it is over instead of
// "enqueued N recipients", while its JSON still says enqueued 0.
func TestDispatchOfFinishedCampaign(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := setup(t)
	b.env["REDIS_URL"] = srv.URL()
	b.env["ONEROUTE_API_KEY"] = "test_finished"
	if code := b.run(t, "dispatch", "--offline", "--id", "fin", "testdata/e2e/campaign.yaml"); code != exitOK {
		t.Fatalf("dispatch: exit %d\n%s", code, b.stderr.String())
	}
	if code := b.run(t, "cancel", "fin"); code != exitOK {
		t.Fatalf("cancel: exit %d\n%s", code, b.stderr.String())
	}
	if code := b.run(t, "dispatch", "--offline", "--id", "fin", "testdata/e2e/campaign.yaml"); code != exitOK {
		t.Fatalf("dispatch again: exit %d\n%s", code, b.stderr.String())
	}
	if diff := cmp.Diff("fin\n", b.stdout.String()); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	want := "campaign fin is already cancelled: nothing enqueued (an earlier dispatch enqueued its 20 recipients); see it with: fanout status fin\n"
	if got := b.stderr.String(); !strings.HasSuffix(got, want) || strings.Contains(got, "enqueued 20 recipients") {
		t.Errorf("stderr = %q, want it to end with %q", got, want)
	}
	if code := b.run(t, "dispatch", "--offline", "--json", "--id", "fin", "testdata/e2e/campaign.yaml"); code != exitOK {
		t.Fatalf("dispatch --json: exit %d\n%s", code, b.stderr.String())
	}
	var res dispatchJSON
	if err := json.Unmarshal(b.stdout.Bytes(), &res); err != nil || res.Enqueued != 0 || res.Total != 20 {
		t.Errorf("JSON %s: enqueued %d total %d, want 0 and 20 (%v)", b.stdout.String(), res.Enqueued, res.Total, err)
	}
}
