package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// CampaignSender sends a WhatsApp template campaign through OneRoute's
// campaign endpoint. Provider implementations that lack it cannot send
// whatsapp_campaign batches.
type CampaignSender interface {
	SendCampaign(ctx context.Context, r oneroute.TemplateRequest) (campaignID string, err error)
}

var _ CampaignSender = (*oneroute.Client)(nil)

// errNoCampaignSender refuses a whatsapp_campaign batch when the provider
// cannot send campaigns (a wiring mistake, not a recipient's fault).
var errNoCampaignSender = errors.New("the OneRoute client cannot send WhatsApp campaigns")

// WhatsAppCampaignHandler runs whatsapp:campaign tasks (channel
// whatsapp_campaign): each request of the batch (split to the burst as
// templates are) is one POST /api/public/whatsapp/campaign, a OneRoute
// campaign of its own, whose messages each carry their row's deterministic
// identifier (campaigns.Identifier). OneRoute answers only "Data
// received" and a campaign_id, recorded in storage (fanout status --json
// oneroute_campaign_ids); the messages are processed later. So an
// accepted request records every row accepted with its identifier as the
// provider id, and their statuses come by identifier from the Logs API
// (logsweep.go) and the messageStatus and campaignCompleted webhooks.
//
// An ambiguous answer (timeout or reset after the body was written,
// 502/503/504) keeps the rows' claims; the follow-up task reconciles them
// once stale by looking each identifier up in the Logs API
// (lookupIdentifier): a row OneRoute has is accepted, never resent; only a
// row proven absent is sent again.
type WhatsAppCampaignHandler struct{ b *batchSender }

// ProcessTask implements asynq.Handler.
func (h *WhatsAppCampaignHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return processBatch(ctx, h.b, t, h.send)
}

// send builds a whatsapp_campaign batch's requests.
func (h *WhatsAppCampaignHandler) send(b *campaigns.Batch) channel {
	deps := h.b.deps
	return channel{batchFunc: func(ctx context.Context, items []campaigns.Item) ([]oneroute.Result, error) {
		cs, ok := deps.Provider.(CampaignSender)
		if !ok {
			return nil, errNoCampaignSender
		}
		req := oneroute.TemplateRequest{From: b.From, Messages: make([]oneroute.TemplateMessage, len(items))}
		idents := make([]string, len(items))
		for i, it := range items {
			idents[i] = campaigns.Identifier(b.Campaign, it.Row)
			req.Messages[i] = oneroute.TemplateMessage{
				To:         it.To,
				Save:       true,
				Template:   templateRef(b, b.ContentOf(it)),
				Metadata:   map[string]any{"identifier": idents[i]},
				Identifier: idents[i],
			}
		}
		cid, err := cs.SendCampaign(ctx, req)
		if err != nil {
			return nil, err
		}
		rec := storage.OneRouteCampaign{ID: cid, Batch: tasks.BatchKey(b), Messages: len(items), At: time.Now()}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := deps.Store.AddOneRouteCampaign(rctx, b.Campaign, rec); err != nil {
			// The rows' identifiers, not the campaign id, follow them.
			zerolog.Ctx(ctx).Warn().Err(err).Str("oneroute_campaign", cid).Msg("record OneRoute campaign id")
		}
		zerolog.Ctx(ctx).Debug().Str("oneroute_campaign", cid).Int("messages", len(items)).Msg("campaign accepted")
		out := make([]oneroute.Result, len(items))
		for i := range out {
			out[i] = oneroute.Result{Status: "success", Response: idents[i]}
		}
		return out, nil
	}}
}

// reconcilesByIdentifier reports whether ambiguous sends of channel c are
// kept claimed and looked up by identifier in the Logs API before any
// resend.
func reconcilesByIdentifier(c campaigns.Channel) bool { return c == campaigns.ChannelWhatsAppCampaign }

// lookupIdentifier looks for a whatsapp_campaign message in the Logs API
// by its identifier: found (with the identifier as its provider id) when
// a log row names it created at or after since, absent when none does. A
// row older than since belongs to an earlier send of the row (a retry
// round of fanout retry-failed) and does not count.
//
// Absent is trusted because the campaign endpoint writes a pending log row
// for each message when it accepts the request, and the lookup runs only
// once the claim is stale (Options.RequestTimeout + 5 s after the
// request): a request OneRoute accepted has its rows by then.
func lookupIdentifier(ctx context.Context, r LogReader, ident string, since time.Time) (string, verdict) {
	rows, _, err := r.FetchLogs(ctx, oneroute.LogFilter{Identifier: ident, Medium: "WHATSAPP"}, oneroute.Page{Size: 20, Number: 1})
	if err != nil {
		switch oneroute.Classify(err) {
		case oneroute.Temporary, oneroute.Throttled, oneroute.Ambiguous:
			return "", retryLookup
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return "", retryLookup
		}
		return "", inconclusive
	}
	filtered := true
	for _, e := range rows {
		if e.Identifier == nil || *e.Identifier != ident {
			filtered = false // another message: the filter was not applied
			continue
		}
		if e.CreatedAt.IsZero() || !e.CreatedAt.Before(since) {
			return ident, found
		}
	}
	if !filtered {
		// The Logs API ignored the identifier filter: a page of other
		// messages proves nothing about this one.
		return "", inconclusive
	}
	return "", absent
}

// lookupIdentifiers fills the verdicts of stale whatsapp_campaign rows,
// concurrently up to Options.PerCallConcurrency.
func (a *attempt) lookupIdentifiers(ctx context.Context, stale []staleItem, ids []string, verdicts []verdict) {
	sem := make(chan struct{}, a.s.opts.PerCallConcurrency)
	var wg sync.WaitGroup
	for i, st := range stale {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ident := campaigns.Identifier(a.b.Campaign, st.item.Row)
			ids[i], verdicts[i] = lookupIdentifier(ctx, a.s.deps.Provider, ident, st.since.Add(-clockSkew))
		}()
	}
	wg.Wait()
}
