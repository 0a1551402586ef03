package worker

import (
	"context"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
)

// EmailHandler runs email:send tasks: one call for a batch whose subject and
// body are the same for everyone, one call per message otherwise. Each
// recipient carries its row's deterministic identifier (identifiers[], a
// guessed field), which names it in the Logs API.
type EmailHandler struct{ b *batchSender }

// ProcessTask implements asynq.Handler.
func (h *EmailHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return processBatch(ctx, h.b, t, h.send)
}

// send builds an email batch's requests: one for a shared subject and body,
// one per recipient otherwise.
func (h *EmailHandler) send(b *campaigns.Batch) channel {
	p := h.b.deps.Provider
	if b.Shared != nil {
		return channel{batchFunc: func(ctx context.Context, items []campaigns.Item) ([]oneroute.Result, error) {
			return p.SendEmail(ctx, b.ChannelID, oneroute.EmailRequest{Subject: b.Shared.Subject, Message: b.Shared.Text, Recipients: addresses(items),
				Identifiers: identifiers(b.Campaign, items)})
		}}
	}
	return channel{eachFunc: func(ctx context.Context, it campaigns.Item) ([]oneroute.Result, error) {
		c := b.ContentOf(it)
		return p.SendEmail(ctx, b.ChannelID, oneroute.EmailRequest{Subject: c.Subject, Message: c.Text, Recipients: []string{it.To},
			Identifiers: []string{campaigns.Identifier(b.Campaign, it.Row)}})
	}}
}

// identifiers are the items' message identifiers, in order.
func identifiers(campaign string, items []campaigns.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = campaigns.Identifier(campaign, it.Row)
	}
	return out
}
