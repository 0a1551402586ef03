package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// The OneRoute campaign ids of a whatsapp_campaign are kept per campaign,
// listed oldest first, recorded once however often a request is recorded,
// and shown in its progress (oneroute_campaign_ids).
func TestOneRouteCampaigns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	st := storage.New(rdb)
	spec := campaigns.Spec{ID: "orc", Channel: campaigns.ChannelWhatsAppCampaign, From: "2348000000001",
		Template: &campaigns.Template{Name: "t"}, Recipients: "r.csv"}
	if _, err := st.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	for _, c := range []storage.OneRouteCampaign{
		{ID: "c2", Batch: "b1", Messages: 50, At: t0.Add(time.Second)},
		{ID: "c1", Batch: "b0", Messages: 50, At: t0},
		{ID: "c2", Batch: "b1", Messages: 50, At: t0.Add(time.Second)},
	} {
		if err := st.AddOneRouteCampaign(ctx, "orc", c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.OneRouteCampaigns(ctx, "orc")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (storage.OneRouteCampaign{ID: "c1", Batch: "b0", Messages: 50, At: t0}) || got[1].ID != "c2" {
		t.Fatalf("OneRoute campaigns %+v", got)
	}
	p, err := st.Progress(ctx, "orc")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.OneRouteCampaignIDs) != 2 || p.OneRouteCampaignIDs[0] != "c1" || p.OneRouteCampaignIDs[1] != "c2" {
		t.Fatalf("progress oneroute_campaign_ids %v, want [c1 c2]", p.OneRouteCampaignIDs)
	}
}
