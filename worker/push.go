package worker

import (
	"context"
	"errors"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
)

// PushSender sends an Embed push notification. Provider implementations
// that lack it cannot send push batches.
type PushSender interface {
	SendPush(ctx context.Context, r oneroute.PushRequest) (id string, err error)
}

var _ PushSender = (*oneroute.Client)(nil)

// errNoPushSender refuses a push batch when the provider cannot send push
// notifications (a wiring mistake, not a recipient's fault).
var errNoPushSender = errors.New("the OneRoute client cannot send push notifications")

// PushHandler runs push:send tasks (channel push): one POST
// /api/public/embed/push per recipient, through the shared send path
// (claim, stamp, send, record), paced per widget (sender key
// "push:<widget_id>"). A recipient whose address holds an '@' is named by
// email, anyone else by customer id (campaigns.PushByEmail). Push has no
// delivery status and no lookup: an accepted notification is final, and an
// ambiguous answer ends the recipient unknown (resent only with
// at_least_once), as an email does.
type PushHandler struct{ b *batchSender }

// ProcessTask implements asynq.Handler.
func (h *PushHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return processBatch(ctx, h.b, t, h.send)
}

// send builds a push batch's requests: one per recipient.
func (h *PushHandler) send(b *campaigns.Batch) channel {
	p := h.b.deps.Provider
	return channel{eachFunc: func(ctx context.Context, it campaigns.Item) ([]oneroute.Result, error) {
		ps, ok := p.(PushSender)
		if !ok {
			return nil, errNoPushSender
		}
		c := b.ContentOf(it)
		req := oneroute.PushRequest{WidgetID: b.WidgetID, Title: c.Subject, Message: c.Text, URL: c.URL}
		if campaigns.PushByEmail(it.To) {
			req.Email = it.To
		} else {
			req.CustomerID = it.To
		}
		id, err := ps.SendPush(ctx, req)
		if err != nil {
			return nil, err
		}
		return []oneroute.Result{{Status: "success", Response: id}}, nil
	}}
}
