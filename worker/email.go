package worker

import (
	"context"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
)

// EmailHandler runs email:send tasks: one call for a batch whose subject and
// body are the same for everyone, one call per message otherwise.
type EmailHandler struct{ b *batchSender }

// ProcessTask implements asynq.Handler.
func (h *EmailHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var b campaigns.Batch
	if err := campaigns.Decode(t.Payload(), &b); err != nil {
		return skip(err)
	}
	return h.b.process(ctx, &b, h.send)
}

func (h *EmailHandler) send(ctx context.Context, b *campaigns.Batch, items []campaigns.Item) []outcome {
	p := h.b.deps.Provider
	if b.Shared != nil {
		to := make([]string, len(items))
		for i, it := range items {
			to[i] = it.To
		}
		res, err := p.SendEmail(ctx, b.ChannelID, oneroute.EmailRequest{Subject: b.Shared.Subject, Message: b.Shared.Text, Recipients: to})
		return fromResults(res, err, len(items))
	}
	return perMessage(ctx, items, h.b.opts.PerCallConcurrency, func(ctx context.Context, it campaigns.Item) ([]oneroute.Result, error) {
		c := b.ContentOf(it)
		return p.SendEmail(ctx, b.ChannelID, oneroute.EmailRequest{Subject: c.Subject, Message: c.Text, Recipients: []string{it.To}})
	})
}
