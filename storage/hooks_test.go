package storage_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/storage"
)

// Webhook events are recorded once each (a replay, or a second copy in the
// same call, writes nothing), read back in order, and leave exactly the
// keys hooks.go lays out, spelled as ever.
func TestHookKeysAndDedupe(t *testing.T) {
	t.Parallel()
	b := setup(t)
	evs := []storage.HookEvent{{Digest: "aa", Body: []byte(`{"n":1}`)}, {Digest: "bb", Body: []byte(`{"n":2}`)}, {Digest: "aa", Body: []byte(`{"n":1}`)}}
	got, err := b.store.RecordHooks(b.ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]bool{true, true, false}, got); diff != "" {
		t.Fatalf("recorded (-want +got):\n%s", diff)
	}
	if got, _ := b.store.RecordHooks(b.ctx, evs[:1]); !slices.Equal(got, []bool{false}) {
		t.Fatalf("a replay recorded again: %v", got)
	}
	if ttl := b.rdb.PTTL(b.ctx, "fanout:{hooks}:d:aa").Val(); ttl < storage.HookDedupeTTL-time.Minute {
		t.Errorf("dedupe key expires in %s, want about %s", ttl, storage.HookDedupeTTL)
	}
	if err := b.store.EnsureHookGroup(b.ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.store.EnsureHookGroup(b.ctx); err != nil {
		t.Fatalf("creating the group twice: %v", err)
	}
	read, err := b.store.ReadHooks(b.ctx, "c1", 10, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != 2 || string(read[0].Body) != `{"n":1}` || string(read[1].Body) != `{"n":2}` {
		t.Fatalf("read %+v", read)
	}
	now := time.Now()
	later := []storage.Deferred{{FirstSeen: now, Due: now.Add(time.Second), Body: read[1].Body}}
	if err := b.store.AckHooks(b.ctx, []string{read[0].ID, read[1].ID}, later); err != nil {
		t.Fatal(err)
	}
	if n := b.rdb.XLen(b.ctx, "fanout:{hooks}:s").Val(); n != 0 {
		t.Errorf("%d stream entries after the acknowledgement, want 0", n)
	}
	if due, _ := b.store.DueHooks(b.ctx, now, 10); len(due) != 0 {
		t.Errorf("%d put-off events due before their time", len(due))
	}
	due, err := b.store.DueHooks(b.ctx, now.Add(time.Second), 10)
	if err != nil || len(due) != 1 || string(due[0].Body) != `{"n":2}` || due[0].FirstSeen.UnixMilli() != now.UnixMilli() {
		t.Fatalf("due %+v, %v", due, err)
	}
	if err := b.store.MarkHooked(b.ctx, []string{"k"}, 0); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.store.HookedReports(b.ctx, "k"); !ok {
		t.Error("campaign k not marked")
	}
	if ok, _ := b.store.HooksFlowing(b.ctx); !ok {
		t.Error("webhooks not flowing after events were recorded")
	}
	keys, err := b.rdb.Keys(b.ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	want := []string{"fanout:{hooks}:d:aa", "fanout:{hooks}:d:bb", "fanout:{hooks}:later", "fanout:{hooks}:live", "fanout:{hooks}:s", "fanout:{k}:hk"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

// ReportCampaigns lists the campaigns created since then that track
// delivery reports and are not completed.
func TestReportCampaigns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	before := time.Now()
	for _, id := range []string{"a", "b"} {
		if _, err := b.store.Create(b.ctx, smsSpec(id)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.store.ReportCampaigns(b.ctx, before.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Errorf("campaigns (-want +got):\n%s", diff)
	}
	if got, _ := b.store.ReportCampaigns(b.ctx, time.Now().Add(time.Minute)); len(got) != 0 {
		t.Errorf("campaigns created before the horizon listed: %v", got)
	}
}
