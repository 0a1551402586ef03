package worker

import (
	"context"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/tasks"
)

// SMSHandler runs sms:send tasks. A batch whose text is the same for every
// recipient is one provider call with recipients[]; personalised texts are
// one call per message, made concurrently.
type SMSHandler struct{ b *batchSender }

// ProcessTask implements asynq.Handler.
func (h *SMSHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var b campaigns.Batch
	if err := tasks.Decode(t.Payload(), &b); err != nil {
		return skip(err)
	}
	return h.b.process(ctx, &b, h.send)
}

func (h *SMSHandler) send(ctx context.Context, a *attempt, items []campaigns.Item) []outcome {
	b := a.b
	p := h.b.deps.Provider
	if b.Shared != nil {
		return a.batchCall(ctx, items, func(ctx context.Context, items []campaigns.Item) []outcome {
			res, err := p.SendSMS(ctx, b.ChannelID, oneroute.SMSRequest{Message: b.Shared.Text, Recipients: addresses(items)})
			return fromResults(res, err, len(items))
		})
	}
	return a.eachCall(ctx, items, func(ctx context.Context, it campaigns.Item) ([]oneroute.Result, error) {
		return p.SendSMS(ctx, b.ChannelID, oneroute.SMSRequest{Message: b.ContentOf(it).Text, Recipients: []string{it.To}})
	})
}

func addresses(items []campaigns.Item) []string {
	to := make([]string, len(items))
	for i, it := range items {
		to[i] = it.To
	}
	return to
}
