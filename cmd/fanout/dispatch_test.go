package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/internal/redistest"
)

// runDispatch runs fanout with stdin and returns the exit code and outputs.
func runDispatch(t *testing.T, vars map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := &env{stdout: &stdout, stderr: &stderr, stdin: strings.NewReader(stdin), getenv: func(k string) string { return vars[k] }}
	code := runMain(ctx, e, args)
	return code, stdout.String(), stderr.String()
}

// A dry run of the messy file counts every class of row, estimates the
// sending time from the spec's rate, and writes a rejects report whose
// cells a spreadsheet cannot run as formulas.
func TestDispatchDryRunMessyFile(t *testing.T) {
	t.Parallel()
	rejects := filepath.Join(t.TempDir(), "rejects.csv")
	code, out, errOut := runDispatch(t, map[string]string{"LOG_LEVEL": "warn"}, "",
		"dispatch", "--dry-run", "--offline", "--json", "--rejects", rejects, "--suppress", "testdata/dispatch/suppress.txt", "testdata/dispatch/messy.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got dispatchJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	counts := []int{got.Rows, got.Valid, got.Invalid, got.Duplicates, got.Suppressed, got.Batches}
	if diff := cmp.Diff([]int{11, 4, 5, 1, 1, 2}, counts); diff != "" {
		t.Errorf("rows, valid, invalid, duplicates, suppressed, batches (-want +got):\n%s", diff)
	}
	if got.Estimate == nil || got.Estimate.Bound != "per_second" || got.Estimate.Seconds != 1 {
		t.Errorf("estimate %+v, want 1 s bound per_second (4 messages at 2/s, burst 2)", got.Estimate)
	}
	f, err := os.Open(rejects)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 || strings.Join(recs[0], ",") != "row,line,value,reason" {
		t.Fatalf("rejects report:\n%v", recs)
	}
	if recs[4][0] != "8" || recs[4][2] != "'=1+2" {
		t.Errorf("formula row reported as %v, want row 8 value '=1+2", recs[4])
	}
}

// Recipients piped on standard input; a bad delimiter is a usage error.
func TestDispatchStdinAndBadFlags(t *testing.T) {
	t.Parallel()
	code, out, errOut := runDispatch(t, map[string]string{}, "phone;name\n0803 123 4567;Ada\n+2348031234567;Dup\n",
		"dispatch", "--dry-run", "--offline", "--json", "--recipients", "-", "--delimiter", ";", "testdata/dispatch/messy.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, `"valid":1,`) || !strings.Contains(out, `"duplicates":1,`) {
		t.Errorf("output %s", out)
	}
	code, _, errOut = runDispatch(t, map[string]string{}, "", "dispatch", "--dry-run", "--delimiter", "ab", "testdata/dispatch/messy.yaml")
	if code != exitBadInput || !strings.Contains(errOut, "--delimiter") {
		t.Errorf("bad delimiter: exit %d, %s", code, errOut)
	}
}

// Dispatching twice on a private Redis: the second run enqueues nothing;
// --detach uploads and hands the expansion to a campaign:expand task.
func TestDispatchTwiceAndDetach(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	env := map[string]string{"REDIS_URL": srv.URL(), "ONEROUTE_API_KEY": "test-key", "LOG_LEVEL": "warn"}
	var runs []dispatchJSON
	for i := 0; i < 2; i++ {
		code, out, errOut := runDispatch(t, env, "", "dispatch", "--offline", "--json", "--suppress", "testdata/dispatch/suppress.txt", "testdata/dispatch/messy.yaml")
		if code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, code, errOut)
		}
		var r dispatchJSON
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	if runs[0].Enqueued != 2 || runs[1].Enqueued != 0 || runs[1].Resumed != 2 {
		t.Errorf("enqueued %d then %d (resumed %d); want 2, then 0 and 2", runs[0].Enqueued, runs[1].Enqueued, runs[1].Resumed)
	}
	code, out, errOut := runDispatch(t, env, "", "dispatch", "--offline", "--detach", "--json", "--id", "messy-detached", "testdata/dispatch/messy.yaml")
	if code != 0 {
		t.Fatalf("detach: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, `"detached":true`) || !strings.Contains(out, `"valid":5`) {
		t.Errorf("detach output %s", out)
	}
	rdb := srv.Client(t)
	if n, err := rdb.Exists(context.Background(), "fanout:{messy-detached}:src", "asynq:{sms}:t:messy-detached:expand:0").Result(); err != nil || n != 2 {
		t.Errorf("upload index and expand task: %d of 2 exist (%v)", n, err)
	}
}
