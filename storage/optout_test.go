package storage_test

import (
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// An opt-out set is per channel kind and persistent: an address added once
// keeps its first time and reason, lookups answer per address in order,
// removal takes it out, and list and count see exactly what is there.
func TestOptOutSet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	n, err := b.store.AddOptOuts(b.ctx, storage.OptOutSMS, "stop-word:STOP", now, "+2348030000001", "+2348030000002")
	if err != nil || n != 2 {
		t.Fatalf("added %d, %v; want 2", n, err)
	}
	// Again, later, with another reason: the first entry stands.
	if n, err := b.store.AddOptOuts(b.ctx, storage.OptOutSMS, "manual", now.Add(time.Hour), "+2348030000001", "+2348030000003"); err != nil || n != 1 {
		t.Fatalf("added %d, %v; want 1 (one was there)", n, err)
	}
	got, err := b.store.OptedOut(b.ctx, storage.OptOutSMS, []string{"+2348030000009", "+2348030000001", "+2348030000003"})
	if err != nil {
		t.Fatal(err)
	}
	want := []*storage.OptOut{nil,
		{Address: "+2348030000001", At: now, Reason: "stop-word:STOP"},
		{Address: "+2348030000003", At: now.Add(time.Hour), Reason: "manual"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("OptedOut (-want +got):\n%s", d)
	}
	// Another kind is another set.
	if wa, _ := b.store.OptedOut(b.ctx, storage.OptOutWhatsApp, []string{"+2348030000001"}); wa[0] != nil {
		t.Errorf("whatsapp set holds an SMS opt-out: %+v", wa[0])
	}
	if r, err := b.store.RemoveOptOuts(b.ctx, storage.OptOutSMS, "+2348030000002", "+2348030000009"); err != nil || r != 1 {
		t.Errorf("removed %d, %v; want 1", r, err)
	}
	var listed []string
	err = b.store.ListOptOuts(b.ctx, storage.OptOutSMS, func(o storage.OptOut) error {
		listed = append(listed, o.Address+" "+o.Reason)
		return nil
	})
	sort.Strings(listed)
	if d := cmp.Diff([]string{"+2348030000001 stop-word:STOP", "+2348030000003 manual"}, listed); err != nil || d != "" {
		t.Errorf("list: %v (-want +got):\n%s", err, d)
	}
	if c, err := b.store.CountOptOuts(b.ctx, storage.OptOutSMS); err != nil || c != 2 {
		t.Errorf("count %d, %v; want 2", c, err)
	}
	if _, err := b.store.AddOptOuts(b.ctx, "fax", "", now, "1"); !errors.Is(err, storage.ErrUnknownKind) {
		t.Errorf("kind fax: %v, want ErrUnknownKind", err)
	}
}

// Lookups and listing work past one HMGET chunk and one HSCAN page.
func TestOptOutSetLarge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	addrs := make([]string, 2500)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("user%d@example.com", i)
	}
	if n, err := b.store.AddOptOuts(b.ctx, storage.OptOutEmail, "import", time.Now(), addrs[:2000]...); err != nil || n != 2000 {
		t.Fatalf("added %d, %v", n, err)
	}
	got, err := b.store.OptedOut(b.ctx, storage.OptOutEmail, addrs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range got {
		if (o != nil) != (i < 2000) || (o != nil && o.Address != addrs[i]) {
			t.Fatalf("address %d: %+v", i, o)
		}
	}
	seen := map[string]bool{}
	if err := b.store.ListOptOuts(b.ctx, storage.OptOutEmail, func(o storage.OptOut) error { seen[o.Address] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2000 {
		t.Errorf("listed %d distinct, want 2000", len(seen))
	}
}

// A row whose recipient opted out is skipped once, counted skipped and
// opted_out (and so suppressed), and keeps the reason in the ledger; a row
// already being sent or final is left alone, and the campaign completes
// when the skip settles its last rows.
func TestSkipOptedOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("skipopt")
	rows := b.create(t, spec, 4)
	// Row 1 accepted, row 2 sending, row 3 claimed by another attempt, row 4 pending.
	if _, err := b.store.Claim(b.ctx, spec.ID, "A", rows[:3], time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Stamp(b.ctx, spec.ID, "A", rows[:2]); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", accept(rows[:1])); err != nil {
		t.Fatal(err)
	}
	reason := storage.OptedOutReason(storage.OptOut{Reason: "stop-word:STOP"})
	reasons := []string{reason, reason, reason, reason}
	n, err := b.store.SkipOptedOut(b.ctx, spec.ID, rows, reasons)
	if err != nil || n != 2 {
		t.Fatalf("skipped %d, %v; want 2 (the claimed and the pending row)", n, err)
	}
	if n, _ := b.store.SkipOptedOut(b.ctx, spec.ID, rows, reasons); n != 0 {
		t.Errorf("skipped %d again, want 0", n)
	}
	// The claim's owner can no longer stamp row 3.
	if owned, _ := b.store.Stamp(b.ctx, spec.ID, "A", rows[2:3]); owned[0] {
		t.Error("row 3 is still stamped by its old claim")
	}
	entries, _ := b.store.Ledger(b.ctx, spec.ID, rows)
	for _, e := range entries[2:] {
		if e.State != storage.LedgerSkipped || e.Value != "opted out: stop-word:STOP" {
			t.Errorf("row %d: %c %q", e.Row, e.State, e.Value)
		}
	}
	p, _ := b.store.Progress(b.ctx, spec.ID)
	if p.Skipped != 2 || p.OptedOut != 2 || p.Suppressed != 2 || p.Pending != 1 || p.Done()+p.Pending != p.Total {
		t.Errorf("progress %+v; want skipped, opted_out and suppressed 2, pending 1 (the sending row)", p)
	}
	// Row 2's send ends: the campaign moves on (sent: a DLR is awaited).
	if _, err := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", accept(rows[1:2])); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.store.Progress(b.ctx, spec.ID); p.State != campaigns.StateSent {
		t.Errorf("state %s, want sent", p.State)
	}
}
