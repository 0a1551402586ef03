package worker

import (
	"context"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/tasks"
)

// EmailHandler runs email:send tasks: one call for a batch whose subject and
// body are the same for everyone, one call per message otherwise.
type EmailHandler struct{ b *batchSender }

// ProcessTask implements asynq.Handler.
func (h *EmailHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var b campaigns.Batch
	if err := tasks.Decode(t.Payload(), &b); err != nil {
		return skip(err)
	}
	return h.b.process(ctx, &b, h.send)
}

func (h *EmailHandler) send(ctx context.Context, a *attempt, items []campaigns.Item) []outcome {
	b := a.b
	p := h.b.deps.Provider
	if b.Shared != nil {
		return a.batchCall(ctx, items, func(ctx context.Context, items []campaigns.Item) []outcome {
			res, err := p.SendEmail(ctx, b.ChannelID, oneroute.EmailRequest{Subject: b.Shared.Subject, Message: b.Shared.Text, Recipients: addresses(items)})
			return fromResults(res, err, len(items))
		})
	}
	return a.eachCall(ctx, items, func(ctx context.Context, it campaigns.Item) ([]oneroute.Result, error) {
		c := b.ContentOf(it)
		return p.SendEmail(ctx, b.ChannelID, oneroute.EmailRequest{Subject: c.Subject, Message: c.Text, Recipients: []string{it.To}})
	})
}
