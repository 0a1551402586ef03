package storage_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// The provider-id index holds exactly the accepted SMS awaiting a report:
// Record adds a row when it records it accepted and removes it when its
// report is recorded, RowsOf and Awaited read it, Settle records reports by
// provider id with counters that count each recipient once, and every
// index key expires.
func TestIndexFollowsTheLedger(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := smsSpec("idx")
	rows := b.create(t, spec, 300)
	if _, err := b.store.Claim(b.ctx, spec.ID, "A", rows, time.Minute); err != nil {
		t.Fatal(err)
	}
	outs := accept(rows)
	outs[0] = campaigns.Outcome{Row: 1, State: storage.LedgerFailed, Value: "Invalid number"}
	if n, err := b.store.Record(b.ctx, spec.ID, storage.ModeSend, "A", outs); err != nil || n != 300 {
		t.Fatalf("record: %d, %v", n, err)
	}
	got, err := b.store.RowsOf(b.ctx, spec.ID, []string{"id7", "id1", "nope", "id300"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]int{7, -1, -1, 300}, got); d != "" {
		t.Errorf("RowsOf (-want +got):\n%s", d)
	}
	aw, err := b.store.Awaited(b.ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(aw) != 299 {
		t.Fatalf("%d awaited, want 299 (the failed row is not awaited)", len(aw))
	}
	for _, a := range aw {
		if a.ID != "id"+strconv.Itoa(a.Row) {
			t.Fatalf("awaited %+v", a)
		}
	}
	keys, err := b.rdb.Keys(b.ctx, "fanout:{idx}:x:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("index keys %v, %v", keys, err)
	}
	for _, k := range keys {
		if ttl := b.rdb.PTTL(b.ctx, k).Val(); ttl <= 0 || ttl > storage.DefaultIndexTTL {
			t.Fatalf("%s expires in %s, want (0, %s]", k, ttl, storage.DefaultIndexTTL)
		}
	}

	reports := []storage.Report{{ID: "id2", State: storage.LedgerDelivered}, {ID: "id3", State: storage.LedgerUndelivered},
		{ID: "other-campaign", State: storage.LedgerDelivered}, {ID: "id4", State: storage.LedgerDLRExpired}}
	if n, err := b.store.Settle(b.ctx, spec.ID, reports); err != nil || n != 3 {
		t.Fatalf("settle: %d, %v; want 3", n, err)
	}
	if n, _ := b.store.Settle(b.ctx, spec.ID, reports); n != 0 {
		t.Fatalf("settling again applied %d", n)
	}
	got, _ = b.store.RowsOf(b.ctx, spec.ID, []string{"id2", "id3", "id4", "id5"})
	if d := cmp.Diff([]int{-1, -1, -1, 5}, got); d != "" {
		t.Errorf("RowsOf after settling (-want +got):\n%s", d)
	}
	p, _ := b.store.Progress(b.ctx, spec.ID)
	if p.Delivered != 1 || p.Undelivered != 1 || p.DLRExpired != 1 || p.AwaitingDLR != 296 {
		t.Fatalf("progress %+v", p)
	}
	st, err := b.store.DLRStatus(b.ctx, spec.ID)
	if err != nil || st.Awaiting != 296 || st.Sending || st.State != campaigns.StateSent || st.StartedAt.IsZero() {
		t.Fatalf("DLRStatus %+v, %v", st, err)
	}
	aw, _ = b.store.Awaited(b.ctx, spec.ID)
	if len(aw) != 296 {
		t.Fatalf("%d awaited after settling 3, want 296", len(aw))
	}
}

// Campaigns that await no statuses (dlr 0: created before WhatsApp and
// email were tracked) write no index, tracked WhatsApp campaigns do, and a
// Store's IndexTTL sets the index's expiry.
func TestIndexOnlyForDeliveryReports(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, id := range []string{"wa", "old"} {
		wa := campaigns.Spec{ID: id, Name: "t", Channel: campaigns.ChannelWhatsAppTemplate, From: "2348000000001",
			Template: &campaigns.Template{Name: "tpl"}, Recipients: "r.csv"}
		if id == "old" {
			if _, err := b.store.Create(b.ctx, wa); err != nil {
				t.Fatal(err)
			}
			b.rdb.HSet(b.ctx, "fanout:{old}", "dlr", "0")
		}
		rows := b.create(t, wa, 20)
		if _, err := b.store.Claim(b.ctx, wa.ID, "A", rows, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.Record(b.ctx, wa.ID, storage.ModeSend, "A", accept(rows)); err != nil {
			t.Fatal(err)
		}
		keys := b.rdb.Keys(b.ctx, "fanout:{"+id+"}:x:*").Val()
		if id == "old" && len(keys) != 0 {
			t.Fatalf("an untracked WhatsApp campaign wrote index keys %v", keys)
		}
		if id == "wa" && len(keys) == 0 {
			t.Fatal("a tracked WhatsApp campaign wrote no index keys")
		}
	}

	short := storage.New(b.rdb, storage.IndexTTL(time.Hour))
	spec := smsSpec("short")
	rows := b.create(t, spec, 5)
	if _, err := short.Claim(b.ctx, spec.ID, "A", rows, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := short.Record(b.ctx, spec.ID, storage.ModeSend, "A", accept(rows)); err != nil {
		t.Fatal(err)
	}
	keys := b.rdb.Keys(b.ctx, "fanout:{short}:x:*").Val()
	if len(keys) == 0 {
		t.Fatal("no index keys")
	}
	for _, k := range keys {
		if ttl := b.rdb.PTTL(b.ctx, k).Val(); ttl <= 0 || ttl > time.Hour {
			t.Fatalf("%s expires in %s, want (0, 1h]", k, ttl)
		}
	}
}

// The sweep's memory survives between passes and expires with the index.
func TestSweepMemory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	zero, err := b.store.LoadSweep(b.ctx, "none")
	if err != nil || zero != (storage.Sweep{}) {
		t.Fatalf("LoadSweep of nothing: %+v, %v", zero, err)
	}
	w := storage.Sweep{Floor: 1700000000123, FreshAt: 1700000000999, Latency: 2000, Idle: 2, StraggleAt: 1700000005000, Straggles: 3, PageSize: 100, Passes: 9, Pages: 40, Lookups: 1}
	if err := b.store.SaveSweep(b.ctx, "c", w); err != nil {
		t.Fatal(err)
	}
	got, err := b.store.LoadSweep(b.ctx, "c")
	if d := cmp.Diff(w, got); d != "" || err != nil {
		t.Errorf("LoadSweep (-want +got):\n%s\n%v", d, err)
	}
	keys := b.rdb.Keys(b.ctx, "fanout:{c}:*").Val()
	if !slices.Equal(keys, []string{"fanout:{c}:sw"}) || b.rdb.PTTL(b.ctx, keys[0]).Val() <= 0 {
		t.Fatalf("keys %v, or no expiry", keys)
	}
}
