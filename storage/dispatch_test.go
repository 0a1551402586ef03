package storage_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/storage"
)

// A checkpoint reads back as saved, its recipient hashes accumulate across
// saves and read back in order, and a done checkpoint drops them.
func TestCheckpointRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const id = "ck"
	if ck, err := b.store.Checkpoint(b.ctx, id); err != nil || ck != (storage.Checkpoint{}) {
		t.Fatalf("no checkpoint yet: %+v, %v; want the zero checkpoint", ck, err)
	}
	c := storage.Checkpoint{Seq: 3, Row: 70, RowHash: 1<<63 + 5,
		Counts: storage.DispatchCounts{Rows: 70, Valid: 4, Invalid: 1, Duplicates: 2, Suppressed: 3}}
	if err := b.store.SaveCheckpoint(b.ctx, id, c, 0, []uint64{10, 20}); err != nil {
		t.Fatal(err)
	}
	if err := b.store.SaveCheckpoint(b.ctx, id, c, 2, []uint64{30, 1 << 63}); err != nil {
		t.Fatal(err)
	}
	if err := b.store.SaveHorizon(b.ctx, id, 9, 200, 50); err != nil {
		t.Fatal(err)
	}
	got, err := b.store.Checkpoint(b.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	c.Horizon, c.BatchSize, c.Request = 9, 200, 50
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("checkpoint (-want +got):\n%s", diff)
	}
	var seen []uint64
	if err := b.store.Seen(b.ctx, id, 4, func(h uint64) { seen = append(seen, h) }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint64{10, 20, 30, 1 << 63}, seen); diff != "" {
		t.Errorf("seen (-want +got):\n%s", diff)
	}
	if err := b.store.Seen(b.ctx, id, 5, func(uint64) {}); err == nil {
		t.Error("reading more hashes than stored: no error, want a damaged checkpoint")
	}
	c.Done = true
	if err := b.store.SaveCheckpoint(b.ctx, id, c, 0, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.rdb.Exists(b.ctx, "fanout:{ck}:seen").Result(); n != 0 {
		t.Error("the recipient hashes outlived a done checkpoint")
	}
}

// An upload reads back byte for byte across chunks with its meta, and
// DeleteUpload leaves nothing; a missing upload is ErrNoUpload.
func TestUploadRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const id = "up"
	data := make([]byte, 2<<20+12345) // three chunks
	for i := range data {
		data[i] = "abc,\n"[rand.IntN(5)]
	}
	up := b.store.NewUpload(b.ctx, id, map[string]any{"format": "csv", "window": 7})
	for r := bytes.NewReader(data); r.Len() > 0; {
		if _, err := io.CopyN(up, r, 777); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	}
	if err := up.Close(); err != nil {
		t.Fatal(err)
	}
	if up.Size() != int64(len(data)) {
		t.Errorf("size %d, want %d", up.Size(), len(data))
	}
	r, meta, err := b.store.OpenUpload(b.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if meta["format"] != "csv" || meta["window"] != "7" || r.Chunks() != 3 {
		t.Errorf("meta %v, %d chunks; want csv, window 7, 3 chunks", meta, r.Chunks())
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes that differ from the %d uploaded", len(got), len(data))
	}
	if err := b.store.SaveSuppressed(b.ctx, id, []uint64{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := b.store.DeleteUpload(b.ctx, id, r.Chunks()); err != nil {
		t.Fatal(err)
	}
	if keys, _ := b.rdb.Keys(b.ctx, "*").Result(); len(keys) != 0 {
		t.Errorf("keys left after DeleteUpload: %v", keys)
	}
	if _, _, err := b.store.OpenUpload(b.ctx, id); !errors.Is(err, storage.ErrNoUpload) {
		t.Errorf("open a deleted upload: %v, want ErrNoUpload", err)
	}
}

// Suppression hashes read back as stored; none stored reads as none.
func TestSuppressedRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if got, err := b.store.Suppressed(b.ctx, "sup"); err != nil || len(got) != 0 {
		t.Fatalf("nothing stored: %v, %v", got, err)
	}
	want := []uint64{7, 1 << 63, 42}
	if err := b.store.SaveSuppressed(b.ctx, "sup", want); err != nil {
		t.Fatal(err)
	}
	got, err := b.store.Suppressed(b.ctx, "sup")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("suppressed (-want +got):\n%s", diff)
	}
}

// A later expansion generation wins: an earlier task that runs late finds
// its generation taken over and must not expand.
func TestClaimGenerationNeverGoesBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, c := range []struct {
		gen  int
		want bool
	}{{0, true}, {0, true}, {2, true}, {1, false}, {2, true}, {3, true}} {
		got, err := b.store.ClaimGeneration(b.ctx, "gen", c.gen)
		if err != nil || got != c.want {
			t.Fatalf("claim generation %d: %v, %v; want %v", c.gen, got, err, c.want)
		}
	}
}
