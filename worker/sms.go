package worker

import (
	"context"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
)

// SMSHandler runs sms:send tasks. A batch whose text is the same for every
// recipient is one provider call with recipients[]; personalised texts are
// one call per message, made concurrently.
type SMSHandler struct{ b *batchSender }

// ProcessTask implements asynq.Handler.
func (h *SMSHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return processBatch(ctx, h.b, t, h.send)
}

// send builds an SMS batch's requests: one for a shared text, one per
// recipient for personalised texts.
func (h *SMSHandler) send(b *campaigns.Batch) channel {
	p := h.b.deps.Provider
	if b.Shared != nil {
		return channel{batchFunc: func(ctx context.Context, items []campaigns.Item) ([]oneroute.Result, error) {
			return p.SendSMS(ctx, b.ChannelID, oneroute.SMSRequest{Message: b.Shared.Text, Recipients: addresses(items)})
		}}
	}
	return channel{eachFunc: func(ctx context.Context, it campaigns.Item) ([]oneroute.Result, error) {
		return p.SendSMS(ctx, b.ChannelID, oneroute.SMSRequest{Message: b.ContentOf(it).Text, Recipients: []string{it.To}})
	}}
}

func addresses(items []campaigns.Item) []string {
	to := make([]string, len(items))
	for i, it := range items {
		to[i] = it.To
	}
	return to
}
