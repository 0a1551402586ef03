package worker

import (
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
)

// campaigns.Channel.PerMessage, by which the dispatcher sizes tasks, says
// exactly what the channel handlers do: one request per recipient, or one
// for the batch.
func TestPerMessageMatchesHandlers(t *testing.T) {
	t.Parallel()
	s := &batchSender{}
	handlers := map[campaigns.Channel]channelFunc{
		campaigns.ChannelSMS:              (&SMSHandler{s}).send,
		campaigns.ChannelEmail:            (&EmailHandler{s}).send,
		campaigns.ChannelPush:             (&PushHandler{s}).send,
		campaigns.ChannelWhatsAppTemplate: (&WhatsAppHandler{s}).send,
		campaigns.ChannelWhatsAppCampaign: (&WhatsAppCampaignHandler{s}).send,
	}
	for ch, send := range handlers {
		for _, personal := range []bool{false, true} {
			b := &campaigns.Batch{Channel: ch}
			if !personal {
				b.Shared = &campaigns.Content{Text: "hi"}
			}
			if got, want := send(b).eachFunc != nil, ch.PerMessage(personal); got != want {
				t.Errorf("%s (personalised %v): handler sends one request per message: %v; PerMessage says %v", ch, personal, got, want)
			}
		}
	}
}
