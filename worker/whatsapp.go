package worker

import (
	"context"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
)

// WhatsAppHandler runs whatsapp:template tasks: the whole batch is one call,
// with each recipient's parameters in its own messages[] item. Each message
// carries its row's deterministic identifier (campaigns.Identifier), in
// identifier and in metadata.identifier, so that its status webhooks and
// its Logs API rows name the row.
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
			ident := campaigns.Identifier(b.Campaign, it.Row)
			req.Messages[i] = oneroute.TemplateMessage{
				To:         it.To,
				Save:       true,
				Template:   templateRef(b, b.ContentOf(it)),
				Metadata:   map[string]any{"identifier": ident},
				Identifier: ident,
			}
		}
		return p.SendTemplate(ctx, req)
	}}
}

// templateRef builds a WhatsApp template send's template from a batch and
// one recipient's rendered content: its parameters, header and button
// values. whatsapp:template, whatsapp:campaign and a whatsapp:session
// fallback all send it.
func templateRef(b *campaigns.Batch, c campaigns.Content) oneroute.TemplateRef {
	ref := oneroute.TemplateRef{Name: b.Template, Language: b.Language, Parameters: oneroute.TextParams(c.Params)}
	if b.HeaderType != "" && c.Header != "" {
		h := &oneroute.TemplateHeader{Type: b.HeaderType}
		if b.HeaderType == campaigns.HeaderText {
			h.Text = c.Header
		} else {
			h.Link = c.Header
		}
		ref.Header = h
	}
	if len(c.Buttons) > 0 {
		ref.Buttons = oneroute.TextParams(c.Buttons)
	}
	return ref
}
