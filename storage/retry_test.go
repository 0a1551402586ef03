package storage_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// untrack makes a campaign complete when its rows are final, with no
// delivery statuses to await (as campaigns created before tracking).
func (b *testBundle) untrack(id string) {
	b.rdb.HSet(b.ctx, "fanout:{"+id+"}", "dlr", "0")
}

// settleAll claims rows 1..n with one token and records: rows in failed
// failed with their reason, the rest accepted.
func (b *testBundle) settleAll(t *testing.T, id string, rows []int, failed map[int]string) {
	t.Helper()
	if _, err := b.store.Claim(b.ctx, id, "T", rows, 0); err != nil {
		t.Fatal(err)
	}
	var outs []campaigns.Outcome
	for _, r := range rows {
		if why, ok := failed[r]; ok {
			outs = append(outs, campaigns.Outcome{Row: r, State: storage.LedgerFailed, Value: why})
		} else {
			outs = append(outs, campaigns.Outcome{Row: r, State: storage.LedgerAccepted, Value: "id" + strconv.Itoa(r)})
		}
	}
	if _, err := b.store.Record(b.ctx, id, storage.ModeSend, "T", outs); err != nil {
		t.Fatal(err)
	}
}

// ResetFailed moves only failed rows back to pending, keeps sent + failed
// + unknown + skipped + pending = total, takes their reasons off the
// failure counts (a reason longer than the ledger keeps included), sends
// the campaign back to running and, once the rows are final again, on to
// completed. Rows sent are never reset.
func TestResetFailedMovesOnlyFailedRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("reset")
	spec.Channel = campaigns.ChannelEmail
	rows := b.create(t, spec, 10)
	b.untrack(spec.ID)
	long := "gave up after 3 attempts: HTTP 500: " + strings.Repeat("x", 100)
	b.settleAll(t, spec.ID, rows, map[int]string{2: long, 3: long, 7: "Invalid number"})
	p, _ := b.store.Progress(b.ctx, spec.ID)
	if p.State != campaigns.StateCompleted || p.Failed != 3 {
		t.Fatalf("before: %s failed %d, want completed 3", p.State, p.Failed)
	}
	c := storage.Copy{Key: "b0x1", Rows: []int{2, 3, 4}, Payload: []byte("{}")}
	if err := b.store.SaveCopy(b.ctx, spec.ID, c); err != nil {
		t.Fatal(err)
	}
	// Row 4 was sent: never reset.
	rr, err := b.store.ResetFailed(b.ctx, spec.ID, 1, true, []string{"b0x1"}, []int{2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(storage.ResetResult{Reset: 2, Retries: 1, State: campaigns.StateRunning}, rr); diff != "" {
		t.Errorf("ResetFailed (-want +got):\n%s", diff)
	}
	p, _ = b.store.Progress(b.ctx, spec.ID)
	if p.State != campaigns.StateRunning || p.Failed != 1 || p.Sent != 7 || p.Pending != 2 || p.FinishedAt != nil || p.Retries != 1 {
		t.Errorf("after reset: %s sent %d failed %d pending %d finished %v retries %d, want running 7 1 2 nil 1", p.State, p.Sent, p.Failed, p.Pending, p.FinishedAt, p.Retries)
	}
	why, _ := b.rdb.HGetAll(b.ctx, "fanout:{reset}:why").Result()
	if diff := cmp.Diff(map[string]string{"Invalid number": "1"}, why); diff != "" {
		t.Errorf("failure reasons (-want +got):\n%s", diff)
	}
	entries, _ := b.store.Ledger(b.ctx, spec.ID, []int{2, 3, 4, 7})
	if entries[0].State != 0 || entries[1].State != 0 || entries[2].State != storage.LedgerAccepted || entries[3].State != storage.LedgerFailed {
		t.Errorf("ledger after reset: %+v", entries)
	}
	if n, _ := b.store.RetriedRows(b.ctx, spec.ID, []int{2, 3, 4}); !cmp.Equal(n, []int{1, 1, 0}) {
		t.Errorf("retried rows = %v, want [1 1 0]", n)
	}
	// The retry sends them: the campaign completes again.
	b.settleAll(t, spec.ID, []int{2, 3}, nil)
	p, _ = b.store.Progress(b.ctx, spec.ID)
	if p.State != campaigns.StateCompleted || p.Sent != 9 || p.Failed != 1 || p.Sent+p.Failed != p.Total {
		t.Errorf("after the retry: %s sent %d failed %d total %d, want completed 9 1 10", p.State, p.Sent, p.Failed, p.Total)
	}
}

// ResetFailed changes nothing when the round is not next (another retry
// ran meanwhile), when a copy of the round's tasks is gone, or when the
// campaign is cancelled or missing.
func TestResetFailedRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("refuse")
	spec.Channel = campaigns.ChannelEmail
	rows := b.create(t, spec, 4)
	b.untrack(spec.ID)
	b.settleAll(t, spec.ID, rows, map[int]string{1: "gave up after 3 attempts", 2: "gave up after 3 attempts"})
	if err := b.store.SaveCopy(b.ctx, spec.ID, storage.Copy{Key: "b0x1", Rows: []int{1}, Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}

	if _, err := b.store.ResetFailed(b.ctx, spec.ID, 2, true, []string{"b0x1"}, []int{1}); !errors.Is(err, storage.ErrRoundTaken) {
		t.Errorf("round 2 before round 1: %v, want ErrRoundTaken", err)
	}
	if _, err := b.store.ResetFailed(b.ctx, spec.ID, 1, true, []string{"b0x1", "b1x1"}, []int{1}); !errors.Is(err, storage.ErrCopiesGone) {
		t.Errorf("a copy missing: %v, want ErrCopiesGone", err)
	}
	if _, err := b.store.ResetFailed(b.ctx, "nope", 1, true, nil, []int{1}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("missing campaign: %v, want ErrNotFound", err)
	}
	if p, _ := b.store.Progress(b.ctx, spec.ID); p.Failed != 2 || p.State != campaigns.StateCompleted {
		t.Fatalf("refusals changed the campaign: %s failed %d", p.State, p.Failed)
	}
	// Round 1 once, then its later chunk, then round 1 again is taken.
	if rr, err := b.store.ResetFailed(b.ctx, spec.ID, 1, true, []string{"b0x1"}, []int{1}); err != nil || rr.Reset != 1 {
		t.Fatalf("round 1: %+v %v", rr, err)
	}
	if rr, err := b.store.ResetFailed(b.ctx, spec.ID, 1, false, nil, []int{2}); err != nil || rr.Reset != 1 || rr.Retries != 1 {
		t.Fatalf("round 1, second chunk: %+v %v", rr, err)
	}
	if _, err := b.store.ResetFailed(b.ctx, spec.ID, 1, true, nil, []int{2}); !errors.Is(err, storage.ErrRoundTaken) {
		t.Errorf("round 1 twice: %v, want ErrRoundTaken", err)
	}
	if _, err := b.store.Cancel(b.ctx, spec.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.ResetFailed(b.ctx, spec.ID, 2, true, nil, []int{1}); !errors.Is(err, storage.ErrTransition) {
		t.Errorf("cancelled campaign: %v, want ErrTransition", err)
	}
}

// Report visits every row with an entry once, in row order, with its
// provider id or reason, the times it was retried and, for failed rows
// whose item was kept, the address; FailedRows visits only failed ones.
func TestReportAndFailedRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("report")
	spec.Channel = campaigns.ChannelEmail
	rows := b.create(t, spec, 250) // three ledger buckets
	b.untrack(spec.ID)
	failed := map[int]string{5: "Invalid number", 150: "gave up after 2 attempts"}
	batch := &campaigns.Batch{Campaign: spec.ID, Channel: campaigns.ChannelEmail, Seq: 3, Items: []campaigns.Item{{Row: 5, To: "a@x.io"}, {Row: 150, To: "b@x.io"}}}
	if err := b.store.SaveRetrySource(b.ctx, spec.ID, batch, batch.Items); err != nil {
		t.Fatal(err)
	}
	b.settleAll(t, spec.ID, rows, failed)

	var seen []int
	got := map[int]storage.ReportRow{}
	err := b.store.Report(b.ctx, spec.ID, func(chunk []storage.ReportRow) error {
		for _, r := range chunk {
			seen = append(seen, r.Row)
			got[r.Row] = r
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 250 {
		t.Fatalf("report visited %d rows, want 250", len(seen))
	}
	for i, r := range seen {
		if r != i+1 {
			t.Fatalf("report row %d is %d: not in row order or not once", i+1, r)
		}
	}
	want := map[int]storage.ReportRow{
		5:   {Row: 5, To: "a@x.io", State: "failed", Reason: "Invalid number"},
		6:   {Row: 6, State: "sent", ProviderID: "id6"},
		150: {Row: 150, To: "b@x.io", State: "failed", Reason: "gave up after 2 attempts"},
	}
	for r, w := range want {
		if diff := cmp.Diff(w, got[r]); diff != "" {
			t.Errorf("row %d (-want +got):\n%s", r, diff)
		}
	}
	var failedRows []int
	if err := b.store.FailedRows(b.ctx, spec.ID, func(es []storage.Entry) error {
		for _, e := range es {
			failedRows = append(failedRows, e.Row)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(failedRows, []int{5, 150}) {
		t.Errorf("failed rows = %v, want [5 150]", failedRows)
	}
	head, items, err := b.store.RetrySource(b.ctx, spec.ID, []int{5, 6, 150})
	if err != nil || head == nil || head.Seq != 0 || head.Items != nil || len(items) != 2 || items[1].To != "b@x.io" {
		t.Errorf("retry source = %+v %+v %v, want the batch's common part and rows 5 and 150", head, items, err)
	}
	if err := b.store.Report(b.ctx, "nope", func([]storage.ReportRow) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("report of a missing campaign: %v, want ErrNotFound", err)
	}
}
