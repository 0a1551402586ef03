package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/storage"
)

// waitCampaign creates an email campaign (no delivery reports) of n
// recipients and records failed of them failed and the rest accepted;
// with open, the last recipient stays pending.
func waitCampaign(t *testing.T, store *storage.Store, id string, n, failed int, open bool) {
	t.Helper()
	ctx := context.Background()
	spec := campaigns.Spec{ID: id, Name: "w", Channel: campaigns.ChannelEmail, ChannelID: "ch", Subject: "s", Message: "hi", Recipients: "r.csv"}
	if _, err := store.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := store.AddBatch(ctx, id, 0, n, n); err != nil {
		t.Fatal(err)
	}
	if err := store.FinishDispatch(ctx, id, storage.DispatchCounts{Rows: n}); err != nil {
		t.Fatal(err)
	}
	var rows []int
	var outs []campaigns.Outcome
	last := n
	if open {
		last = n - 1
	}
	for r := 1; r <= last; r++ {
		rows = append(rows, r)
		o := campaigns.Outcome{Row: r, State: storage.LedgerAccepted, Value: "id" + strconv.Itoa(r)}
		if r <= failed {
			o = campaigns.Outcome{Row: r, State: storage.LedgerFailed, Value: "Invalid number"}
		}
		outs = append(outs, o)
	}
	if _, err := store.Claim(ctx, id, "T", rows, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Record(ctx, id, storage.ModeSend, "T", outs); err != nil {
		t.Fatal(err)
	}
}

// fanout wait's exit code says how the campaign ended: 0 all sent, 3 with
// failures, 4 cancelled, 5 still running at the timeout, 2 no such
// campaign; --json prints the status object.
func TestWaitExitCodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	store := storage.New(srv.Client(t))
	waitCampaign(t, store, "clean", 5, 0, false)
	waitCampaign(t, store, "failures", 5, 2, false)
	waitCampaign(t, store, "running", 5, 0, true)
	waitCampaign(t, store, "cancelled", 5, 0, true)
	if _, err := store.Cancel(context.Background(), "cancelled", "test"); err != nil {
		t.Fatal(err)
	}
	b := setup(t)
	b.env["REDIS_URL"] = srv.URL()
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"clean"}, 0},
		{[]string{"failures"}, exitWaitFailures},
		{[]string{"cancelled"}, exitWaitCancelled},
		{[]string{"running", "--timeout", "300ms", "--interval", "50ms"}, exitWaitTimeout},
		{[]string{"nosuch"}, exitBadInput},
		{[]string{"clean", "--until", "soon"}, exitBadInput},
	} {
		if got := b.run(t, append([]string{"wait"}, tc.args...)...); got != tc.want {
			t.Errorf("wait %v: exit %d, want %d\nstdout: %s\nstderr: %s", tc.args, got, tc.want, b.stdout.String(), b.stderr.String())
		}
	}
	if code := b.run(t, "wait", "failures", "--json"); code != exitWaitFailures {
		t.Fatalf("wait --json: exit %d", code)
	}
	var p campaigns.Progress
	if err := json.Unmarshal(b.stdout.Bytes(), &p); err != nil || p.Failed != 2 || p.State != campaigns.StateCompleted {
		t.Errorf("wait --json printed %q (%v), want the completed status with 2 failed", b.stdout.String(), err)
	}
	if code := b.run(t, "wait", "running", "--timeout", "100ms"); code != exitWaitTimeout || !strings.Contains(b.stderr.String(), "still running") {
		t.Errorf("timeout: exit %d, stderr %q", code, b.stderr.String())
	}
}
