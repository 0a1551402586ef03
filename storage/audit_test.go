package storage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/storage"
)

// A batch copy comes back exactly as saved (rows in any order, the
// payload byte for byte), and the campaign is on the audit list until its
// copies are dropped.
func TestCopiesRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.create(t, smsSpec("cp"), 30)
	want := []storage.Copy{
		{Key: "b0", Rows: []int{1, 2, 3, 10}, Payload: []byte(`{"cid":"cp","seq":0}`)},
		{Key: "b1r1-0a0b0c0d", Rows: []int{25, 12, 7}, Payload: []byte(`{"cid":"cp","seq":1,"att":1}`)},
	}
	for _, c := range want {
		if err := b.store.SaveCopy(b.ctx, "cp", c); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]storage.Copy{}
	if err := b.store.Copies(b.ctx, "cp", func(chunk []storage.Copy) error {
		for _, c := range chunk {
			got[c.Key] = c
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]storage.Copy{"b0": want[0], "b1r1-0a0b0c0d": want[1]}, got); d != "" {
		t.Fatalf("copies (-want +got):\n%s", d)
	}
	if ids, _ := b.store.Audited(b.ctx); !cmp.Equal(ids, []string{"cp"}) {
		t.Fatalf("audited %v, want [cp]", ids)
	}
	if err := b.store.DropAllCopies(b.ctx, "cp"); err != nil {
		t.Fatal(err)
	}
	if ids, _ := b.store.Audited(b.ctx); len(ids) != 0 {
		t.Fatalf("audited %v after dropping the copies, want none", ids)
	}
}

// Cancelling settles every recipient that is not final, whatever became of
// its task: pending and claimed ones are skipped, a request older than the
// cutoff becomes unknown, a younger one is left to its attempt (and
// settled by a later call); afterwards sent + failed + unknown + skipped =
// total. A campaign that is not cancelled is refused.
func TestSettleCancelledKeepsTheInvariant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rows := b.create(t, smsSpec("cx"), 20)
	for _, c := range []storage.Copy{{Key: "b0", Rows: rows[:10]}, {Key: "b1", Rows: rows[10:]}} {
		if err := b.store.SaveCopy(b.ctx, "cx", c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.store.SettleCancelled(b.ctx, "cx", time.Now()); !errors.Is(err, storage.ErrTransition) {
		t.Fatalf("settling a running campaign: %v, want ErrTransition", err)
	}
	// Rows 1-3 accepted; 4-5 claimed; 6 sending (stamped just now); 7-20 pending.
	if _, err := b.store.Claim(b.ctx, "cx", "A", rows[:6], time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Record(b.ctx, "cx", storage.ModeSend, "A", accept(rows[:3])); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Stamp(b.ctx, "cx", "A", rows[5:6]); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Cancel(b.ctx, "cx", "test"); err != nil {
		t.Fatal(err)
	}
	st, err := b.store.SettleCancelled(b.ctx, "cx", time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(storage.Settled{Skipped: 16, InFlight: 1}, st); d != "" {
		t.Fatalf("first settle (-want +got):\n%s", d)
	}
	if ids, _ := b.store.Audited(b.ctx); len(ids) != 1 {
		t.Fatalf("copies dropped while a request is in flight")
	}
	// The attempt vanished: past the cutoff its request becomes unknown.
	st, err = b.store.SettleCancelled(b.ctx, "cx", time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(storage.Settled{Abandoned: 1}, st); d != "" {
		t.Fatalf("second settle (-want +got):\n%s", d)
	}
	p, err := b.store.Progress(b.ctx, "cx")
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent != 3 || p.Skipped != 16 || p.Unknown != 1 || p.Sent+p.Failed+p.Unknown+p.Skipped != p.Total {
		t.Fatalf("sent %d skipped %d unknown %d of %d: the invariant does not hold", p.Sent, p.Skipped, p.Unknown, p.Total)
	}
	if ids, _ := b.store.Audited(b.ctx); len(ids) != 0 {
		t.Fatalf("audited %v once everything is settled, want none", ids)
	}
	// Settling again changes nothing.
	if st, err := b.store.SettleCancelled(b.ctx, "cx", time.Now().Add(time.Second)); err != nil || st != (storage.Settled{}) {
		t.Fatalf("settling again: %+v, %v", st, err)
	}
}
