package worker

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/tasks"
)

// WhatsAppHandler runs whatsapp:template tasks: the whole batch is one call,
// with each recipient's parameters in its own messages[] item.
type WhatsAppHandler struct{ b *batchSender }

// ProcessTask implements asynq.Handler.
func (h *WhatsAppHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var b campaigns.Batch
	if err := tasks.Decode(t.Payload(), &b); err != nil {
		return skip(err)
	}
	return h.b.process(ctx, &b, h.send)
}

func (h *WhatsAppHandler) send(ctx context.Context, a *attempt, items []campaigns.Item) []outcome {
	b := a.b
	return a.batchCall(ctx, items, func(ctx context.Context, items []campaigns.Item) []outcome {
		req := oneroute.TemplateRequest{From: b.From, Messages: make([]oneroute.TemplateMessage, len(items))}
		for i, it := range items {
			req.Messages[i] = oneroute.TemplateMessage{
				To:       it.To,
				Save:     true,
				Template: oneroute.TemplateRef{Name: b.Template, Language: b.Language, Parameters: oneroute.TextParams(b.ContentOf(it).Params)},
			}
		}
		res, err := h.b.deps.Provider.SendTemplate(ctx, req)
		return fromResults(res, err, len(items))
	})
}

// skip marks a task that can never succeed (a payload that does not decode).
func skip(err error) error {
	return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
}
