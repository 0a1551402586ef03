package webhooks_test

import (
	"context"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

// A whatsapp_campaign (OneRoute's campaign endpoint) is followed by its
// webhooks alone: the sandbox's messageStatus and campaignCompleted events
// name each message by its identifier, and every row reaches the status
// the sandbox decided with no log request (the fallback is set too late
// to act). worker's TestWhatsAppCampaignWithFaults is the same channel
// with webhooks off.
func TestWhatsAppCampaignChannelWithWebhooks(t *testing.T) {
	t.Parallel()
	const n, id = 200, "wacamphk"
	hw := startHooked(t, sandbox.Options{DLRDelay: 100 * time.Millisecond, ReadDelay: 300 * time.Millisecond, CampaignDelay: 50 * time.Millisecond})
	s := campaigns.Spec{ID: id, Channel: campaigns.ChannelWhatsAppCampaign, From: sandbox.WhatsAppNumber,
		Template: &campaigns.Template{Name: "first_welcome_messsage"}, Recipients: "r.csv"}
	campaign(t, hw.store, hw.enq, s, n, func(string) *campaigns.Content { return &campaigns.Content{Params: []string{"Ada"}} })
	hw.waitStatuses(t, id, n, time.Minute)
	p, err := hw.store.Progress(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent != n || p.Delivered != n*8/10 || p.Read != n*6/10 || p.Undelivered != n/10 {
		t.Errorf("counters: sent %d delivered %d read %d undelivered %d", p.Sent, p.Delivered, p.Read, p.Undelivered)
	}
	if len(p.OneRouteCampaignIDs) != n/50 {
		t.Errorf("%d OneRoute campaign ids, want one per batch (%d)", len(p.OneRouteCampaignIDs), n/50)
	}
	hw.checkSandbox(t, n)
}
