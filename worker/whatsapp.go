package worker

import (
	"context"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
)

// WhatsAppHandler runs whatsapp:template tasks: the whole batch is one call,
// with each recipient's parameters in its own messages[] item.
type WhatsAppHandler struct{ b *batchSender }

// ProcessTask implements asynq.Handler.
func (h *WhatsAppHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return processBatch(ctx, h.b, t, h.send)
}

// send builds a WhatsApp batch's one request.
func (h *WhatsAppHandler) send(b *campaigns.Batch) channel {
	p := h.b.deps.Provider
	return channel{batchFunc: func(ctx context.Context, items []campaigns.Item) ([]oneroute.Result, error) {
		req := oneroute.TemplateRequest{From: b.From, Messages: make([]oneroute.TemplateMessage, len(items))}
		for i, it := range items {
			req.Messages[i] = oneroute.TemplateMessage{
				To:       it.To,
				Save:     true,
				Template: oneroute.TemplateRef{Name: b.Template, Language: b.Language, Parameters: oneroute.TextParams(b.ContentOf(it).Params)},
			}
		}
		return p.SendTemplate(ctx, req)
	}}
}
