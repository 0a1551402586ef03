package campaigns_test

import (
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
)

// whatsapp_campaign takes whatsapp_template's keys: from and template are
// required, message is refused; its statuses are tracked from the Logs API
// and its rate limit is shared with templates from the same number.
func TestWhatsAppCampaignSpec(t *testing.T) {
	t.Parallel()
	s, err := campaigns.LoadSpec("../examples/whatsapp-campaign.yaml")
	if err != nil {
		t.Fatalf("the example: %v", err)
	}
	if s.Channel != campaigns.ChannelWhatsAppCampaign || !s.Channel.Tracked() || !s.Channel.TrackedByLogs() || s.Channel.TracksDLR() {
		t.Fatalf("channel %q: tracked %v, by logs %v, by DLR %v", s.Channel, s.Channel.Tracked(), s.Channel.TrackedByLogs(), s.Channel.TracksDLR())
	}
	b := campaigns.Batch{Channel: campaigns.ChannelWhatsAppCampaign, From: "2348000000001"}
	tpl := campaigns.Batch{Channel: campaigns.ChannelWhatsAppTemplate, From: "2348000000001"}
	if b.Sender() != tpl.Sender() {
		t.Errorf("sender %q, want the template's %q", b.Sender(), tpl.Sender())
	}
	for _, tc := range []struct{ name, spec, want string }{
		{"no from", "channel: whatsapp_campaign\ntemplate: {name: t}\nrecipients: r.csv\n", "channel whatsapp_campaign needs from"},
		{"no template", "channel: whatsapp_campaign\nfrom: \"2348000000001\"\nrecipients: r.csv\n", "channel whatsapp_campaign needs template"},
		{"message", "channel: whatsapp_campaign\nfrom: \"2348000000001\"\ntemplate: {name: t}\nmessage: hi\nrecipients: r.csv\n", "message is not used by whatsapp_campaign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.ParseSpec("c.yaml", []byte(tc.spec))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
