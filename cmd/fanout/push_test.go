package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
)

// The push example end to end on the sandbox: four customers (one named
// twice in the file) get one push each, counted by the sandbox as push.
func TestRunPushExample(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if code := b.run(t, "run", "--sandbox", "--json", "--timeout", "60s", "../../examples/push.yaml"); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, b.stderr.String())
	}
	var got struct {
		campaigns.Progress
		Sandbox struct {
			Accepted   int64            `json:"accepted"`
			Duplicates int64            `json:"duplicates"`
			ByMedium   map[string]int64 `json:"by_medium"`
		} `json:"sandbox"`
	}
	if err := json.Unmarshal(b.stdout.Bytes(), &got); err != nil {
		t.Fatalf("decode %q: %v", b.stdout.String(), err)
	}
	if got.State != campaigns.StateCompleted || got.Sent != 4 || got.Duplicates != 1 || got.Sandbox.ByMedium["push"] != 4 || got.Sandbox.Duplicates != 0 {
		t.Fatalf("state %s sent %d duplicates %d; sandbox push %d (%d duplicates); want completed 4 1, 4 (0)",
			got.State, got.Sent, got.Duplicates, got.Sandbox.ByMedium["push"], got.Sandbox.Duplicates)
	}
}

// A push recipient file with neither a customer_id nor an email column is
// refused before anything is sent, naming the columns expected.
func TestRunPushNeedsCustomerColumn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dir := t.TempDir()
	spec := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(filepath.Join(dir, "p.csv"), []byte("name,phone\nAda,08031230001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spec, []byte("channel: push\nwidget_id: w\ntitle: Hi {{.name}}\nmessage: hi\nrecipients: p.csv\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code := b.run(t, "run", "--sandbox", "--timeout", "30s", spec)
	if code == 0 || !strings.Contains(b.stderr.String(), "p.yaml:5: the recipients file has no customer column (looked for customer_id, email") {
		t.Fatalf("exit %d, stderr:\n%s", code, b.stderr.String())
	}
}

// A customer in the push opt-out set (fanout suppress add --channel push)
// gets no push: the dispatcher counts it suppressed.
func TestRunPushOptOut(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := setup(t)
	b.env["REDIS_URL"] = srv.URL()
	if code := b.run(t, "suppress", "add", "--channel", "push", "cust-1002", "ADA@example.com"); code != 0 {
		t.Fatalf("suppress add: exit %d\n%s", code, b.stderr.String())
	}
	if code := b.run(t, "run", "--sandbox", "--json", "--timeout", "60s", "../../examples/push.yaml"); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, b.stderr.String())
	}
	var got campaigns.Progress
	if err := json.Unmarshal(b.stdout.Bytes(), &got); err != nil {
		t.Fatalf("decode %q: %v", b.stdout.String(), err)
	}
	if got.Sent != 2 || got.Suppressed != 2 {
		t.Fatalf("sent %d suppressed %d; want 2 2", got.Sent, got.Suppressed)
	}
	if code := b.run(t, "report", "--recipients", "../../examples/push.csv", got.ID); code != 0 {
		t.Fatalf("report: exit %d\n%s", code, b.stderr.String())
	}
	report := b.stdout.String()
	for _, want := range []string{"cust-1001", "cust-1004"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %s:\n%s", want, report)
		}
	}
}

// A push spec has nothing to check against OneRoute: dispatch --dry-run
// needs no API key and no --offline for it.
func TestDryRunPushNeedsNoKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	delete(b.env, "ONEROUTE_API_KEY")
	if code := b.run(t, "dispatch", "--dry-run", "../../examples/push.yaml"); code != 0 || !strings.Contains(b.stdout.String()+b.stderr.String(), "4 valid") {
		t.Fatalf("exit %d\n%s%s", code, b.stdout.String(), b.stderr.String())
	}
}
