package worker

import (
	"context"
	"strings"
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
func (s *batchSender) reconcile(ctx context.Context, b *campaigns.Batch, stale []staleItem) (resend []campaigns.Item, outs []campaigns.Outcome) {
	log := zerolog.Ctx(ctx)
	var found map[string]string
	complete := false
	if b.Channel == campaigns.ChannelSMS {
		since := stale[0].since
		want := map[string]bool{}
		for _, st := range stale {
			if st.since.Before(since) {
				since = st.since
			}
			want[oneroute.Phone(st.item.To)] = true
		}
		var err error
		found, complete, err = lookupSMS(ctx, s.deps.Provider, b.ChannelID, since.Add(-clockSkew), want)
		if err != nil {
			log.Warn().Err(err).Msg("reconcile: message lookup failed")
		}
	}
	for _, st := range stale {
		it := st.item
		if id, ok := found[oneroute.Phone(it.To)]; ok {
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: campaigns.LedgerAccepted, Value: id})
			continue
		}
		if complete || b.AtLeastOnce {
			resend = append(resend, it)
			continue
		}
		outs = append(outs, campaigns.Outcome{Row: it.Row, State: campaigns.LedgerUnknown, Value: "outcome unknown and no lookup could settle it"})
	}
	log.Info().Int("stale", len(stale)).Int("found", len(found)).Int("resend", len(resend)).Bool("complete", complete).Msg("reconciled stale claims")
	return resend, outs
}

// lookupSMS scans a channel's messages for the numbers in want, created at
// or after since. complete reports whether the scan provably saw every such
// message (it reached the end of the list, or, for a newest-first list, a
// message older than since).
func lookupSMS(ctx context.Context, r DLRReader, channelID string, since time.Time, want map[string]bool) (found map[string]string, complete bool, err error) {
	found = map[string]string{}
	const size = 100
	for page := 1; page <= maxLookupPages; page++ {
		msgs, _, err := r.FetchSMSMessages(ctx, channelID, "", oneroute.Page{Size: size, Number: page})
		if err != nil {
			return found, false, err
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
			to := strings.TrimPrefix(m.To, "+")
			if want[to] {
				if _, dup := found[to]; !dup {
					found[to] = m.ID
				}
			}
		}
		if len(msgs) < size {
			return found, true, nil
		}
		if newestFirst && older {
			return found, true, nil
		}
	}
	return found, false, nil
}
