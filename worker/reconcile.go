package worker

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
)

// staleItem is a recipient an earlier attempt claimed and never settled.
type staleItem struct {
	item  campaigns.Item
	since time.Time
}

// clockSkew widens lookups so a message created just before the claim time
// on another clock is still found.
const clockSkew = time.Minute

// maxLookupPages bounds one reconciliation's scan of a channel's messages.
const maxLookupPages = 100

// reconcile settles recipients whose earlier attempt vanished between claim
// and record (crash, lease expiry, ambiguous answer). Found at OneRoute means
// accepted; provably absent means safe to send; anything else is unknown and
// is resent only when the campaign opts into at-least-once delivery.
//
// A lookup that fails (5xx, throttled, timeout) keeps the claim and returns
// the item in later, to be looked up again, until the batch's attempts run out.
func (s *batchSender) reconcile(ctx context.Context, b *campaigns.Batch, stale []staleItem) (resend []campaigns.Item, outs []campaigns.Outcome, later []campaigns.Item) {
	log := zerolog.Ctx(ctx)
	type verdict struct {
		id       string
		complete bool
		err      error
	}
	verdicts := make([]verdict, len(stale))
	if b.Channel == campaigns.ChannelSMS {
		sem := make(chan struct{}, s.opts.PerCallConcurrency)
		var wg sync.WaitGroup
		for i, st := range stale {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				id, complete, err := lookupSMS(ctx, s.deps.Provider, b.ChannelID, st.item.To, st.since.Add(-clockSkew))
				verdicts[i] = verdict{id, complete, err}
			}()
		}
		wg.Wait()
	}
	found, failed := 0, 0
	for i, st := range stale {
		it, v := st.item, verdicts[i]
		switch {
		case v.id != "":
			found++
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: campaigns.LedgerAccepted, Value: v.id})
		case v.complete && v.err == nil, b.AtLeastOnce:
			resend = append(resend, it)
		case v.err != nil && b.Failures+1 < s.opts.MaxAttempts:
			failed++
			later = append(later, it)
		default:
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: campaigns.LedgerUnknown, Value: "outcome unknown and no lookup could settle it"})
		}
	}
	log.Info().Int("stale", len(stale)).Int("found", found).Int("resend", len(resend)).Int("lookup_errors", failed).Msg("reconciled stale claims")
	return resend, outs, later
}

// lookupSMS looks for an SMS to one number created at or after since. It
// returns its id when found; complete reports whether the scan provably saw
// every such message (it reached the end of the list, or, for a
// newest-first list, a message older than since).
func lookupSMS(ctx context.Context, r DLRReader, channelID, to string, since time.Time) (id string, complete bool, err error) {
	const size = 100
	for page := 1; page <= maxLookupPages; page++ {
		msgs, raw, _, err := r.FetchSMSMessagesTo(ctx, channelID, to, oneroute.Page{Size: size, Number: page})
		if err != nil {
			return "", false, err
		}
		newestFirst := len(msgs) > 1 && !msgs[0].CreatedAt.Before(msgs[len(msgs)-1].CreatedAt)
		older := false
		for _, m := range msgs {
			if m.CreatedAt.IsZero() {
				continue
			}
			if m.CreatedAt.Before(since) {
				older = true
				continue
			}
			return m.ID, true, nil
		}
		if raw < size || (newestFirst && older) {
			return "", true, nil
		}
	}
	return "", false, nil
}
