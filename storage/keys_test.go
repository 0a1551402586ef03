package storage_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// Key names are data in users' Redis: a campaign that goes through every
// store method leaves exactly the keys keys.go lays out, spelled as ever.
func TestKeySpace(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("k")
	rows := b.create(t, spec, 150)
	if _, err := b.store.Claim(b.ctx, spec.ID, "A", rows, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", accept(rows[:1])); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", []campaigns.Outcome{{Row: 2, State: storage.LedgerFailed, Value: "bad"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.store.SaveCheckpoint(b.ctx, spec.ID, storage.Checkpoint{Seq: 1}, 0, []uint64{1}); err != nil {
		t.Fatal(err)
	}
	up := b.store.NewUpload(b.ctx, spec.ID, nil)
	if _, err := up.Write([]byte("phone\n")); err != nil {
		t.Fatal(err)
	}
	if err := up.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.store.SaveSuppressed(b.ctx, spec.ID, []uint64{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.ClaimGeneration(b.ctx, spec.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.store.SaveSweep(b.ctx, spec.ID, storage.Sweep{Passes: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := b.rdb.Keys(b.ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{
		"fanout:campaigns",
		"fanout:{k}",
		"fanout:{k}:b",
		"fanout:{k}:ckpt",
		"fanout:{k}:expand",
		"fanout:{k}:l:0",
		"fanout:{k}:l:1",
		"fanout:{k}:seen",
		"fanout:{k}:src",
		"fanout:{k}:src:0",
		"fanout:{k}:sup",
		"fanout:{k}:sw",
		"fanout:{k}:why",
		"fanout:{k}:x:771", // the index bucket of provider id "id1": FNV-1a mod 1024
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}
