package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
)

// staleItem is a recipient whose request started in an attempt that
// vanished; since is when the first request for it started.
type staleItem struct {
	item  campaigns.Item
	since time.Time
}

// clockSkew widens lookups so a message created just before the request on
// another clock is still found.
const clockSkew = time.Minute

// maxLookupPages bounds one reconciliation's scan of a channel's messages.
const maxLookupPages = 100

// verdict is what a lookup proved about one recipient.
type verdict int

const (
	// inconclusive: the lookup cannot tell (no lookup for the channel,
	// the list lacks times or texts, too many pages, a permanent error).
	inconclusive verdict = iota
	// found: OneRoute has the message; id is its provider id.
	found
	// absent: the scan provably saw every message since the request and
	// this one is not among them: safe to send.
	absent
	// retryLookup: the lookup failed temporarily; try again later.
	retryLookup
)

// lossWindow is how long after Redis was seen to restart or fail over the
// recipients of campaigns created before are verified with the provider
// before they are sent: long enough for every task that was in flight
// when the writes were lost to come back (a restored active task waits for
// asynq's lease, 30 s, and its recoverer, up to 60 s + 30 s, then a short
// retry delay).
const lossWindow = 150 * time.Second

// lossMargin is how far before the restart a lost write may lie: AOF
// everysec loses about a second, an asynchronous replica its replication
// lag. Lookups search from the restart minus this (and clockSkew).
const lossMargin = time.Minute

// verifyAfterLoss protects against Redis losing its last writes (host
// crash with AOF everysec, failover to an asynchronous replica): a
// recipient sent just before the loss has its ledger entry rolled back to
// pending or claimed, and would be sent again. While the campaign is within
// lossWindow of a restart Redis was seen to make (storage.LossAt), every
// recipient this attempt claimed fresh is treated as possibly sent since
// the restart minus lossMargin: reconciled (looked up) before any send. A
// channel without a lookup makes them unknown, unless the campaign sets
// at_least_once.
func (a *attempt) verifyAfterLoss(ctx context.Context, c *claim) error {
	if len(c.send) == 0 {
		return nil
	}
	at, err := a.s.deps.Store.LossAt(ctx, a.b.Campaign)
	if err != nil {
		return err
	}
	if at.IsZero() || time.Since(at) > lossWindow {
		return nil
	}
	since := at.Add(-lossMargin)
	for _, it := range c.send {
		c.stale = append(c.stale, staleItem{item: it, since: since})
	}
	zerolog.Ctx(ctx).Warn().Time("redis_restart", at).Int("rows", len(c.send)).
		Msg("Redis restarted or failed over and may have lost writes: verifying recipients with the provider before sending")
	c.send = nil
	return nil
}

// reconcile settles recipients whose request started in an attempt that
// vanished (crash, lease expiry, lost answer), and returns those that are
// safe to send. It records its verdicts at once, before anything later can
// return early; rows whose lookup must be tried again go to the plan's
// later part, counted as a failure.
func (a *attempt) reconcile(ctx context.Context, stale []staleItem, p *plan) ([]campaigns.Item, error) {
	if len(stale) == 0 {
		return nil, nil
	}
	resend, settled, again, reports := a.lookUp(ctx, stale)
	if a.expired {
		settled = append(settled, skipped(resend, "expired")...)
		resend = nil
	}
	if err := a.settle(ctx, settled, p); err != nil {
		return nil, err
	}
	a.recordReports(ctx, reports)
	p.later = append(p.later, again...)
	if len(again) > 0 {
		p.fail(errors.New("reconciliation lookup failed"))
	}
	return resend, nil
}

// lookUp decides each stale recipient. Found at OneRoute means accepted;
// provably absent means safe to send; a lookup that failed temporarily is
// tried again later, within the batch's attempts; anything else is unknown,
// and is resent only when the campaign opts into at-least-once delivery.
// An SMS found with its final delivery status already also gives that
// report (reports), to record once the acceptance is.
func (a *attempt) lookUp(ctx context.Context, stale []staleItem) (resend []campaigns.Item, outs []campaigns.Outcome, later []campaigns.Item, reports []campaigns.Outcome) {
	b, s := a.b, a.s
	log := zerolog.Ctx(ctx)
	verdicts := make([]verdict, len(stale))
	ids := make([]string, len(stale))
	finals := make([]byte, len(stale))
	if b.Channel == campaigns.ChannelSMS {
		sem := make(chan struct{}, s.opts.PerCallConcurrency)
		var wg sync.WaitGroup
		for i, st := range stale {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				var m oneroute.SMSMessage
				m, verdicts[i] = lookupSMS(ctx, s.deps.Provider, b.ChannelID, st.item.To, b.ContentOf(st.item).Text, st.since.Add(-clockSkew))
				ids[i], finals[i] = m.ID, finalState(m.Status)
			}()
		}
		wg.Wait()
	}
	if reconcilesByIdentifier(b.Channel) {
		a.lookupIdentifiers(ctx, stale, ids, verdicts) // wacampaign.go
	}
	counts := map[verdict]int{}
	for i, st := range stale {
		it, v := st.item, verdicts[i]
		if v == retryLookup && b.Failures+1 >= s.opts.MaxAttempts {
			v = inconclusive
		}
		counts[v]++
		switch {
		case v == found:
			outs = append(outs, acceptance(it.Row, ids[i]))
			if finals[i] != 0 && b.Channel.TracksDLR() {
				reports = append(reports, campaigns.Outcome{Row: it.Row, State: finals[i], Value: ids[i]})
			}
		case v == absent, b.AtLeastOnce && v != retryLookup:
			resend = append(resend, it)
		case v == retryLookup:
			later = append(later, it)
		default:
			outs = append(outs, campaigns.Outcome{Row: it.Row, State: storage.LedgerUnknown, Value: "outcome unknown and no lookup could settle it"})
		}
	}
	log.Info().Int("stale", len(stale)).Int("found", counts[found]).Int("absent", counts[absent]).
		Int("lookup_failed", counts[retryLookup]).Int("inconclusive", counts[inconclusive]).Msg("reconciled interrupted sends")
	return resend, outs, later, reports
}

// recordReports records the delivery reports a lookup found final with
// the message it found (mode dlr, after the acceptance). The message may
// be older than what the campaign's sweep still reads; without this its
// report would wait for the sweep's stragglers or expiry. A failure only
// leaves the report to the sweep.
func (a *attempt) recordReports(ctx context.Context, reports []campaigns.Outcome) {
	if len(reports) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := a.s.deps.Store.Record(rctx, a.b.Campaign, storage.ModeDLR, "", reports); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Int("reports", len(reports)).Msg("record delivery reports found while reconciling; the sweep will read them")
	}
}

// lookupSMS looks for the SMS with this text to one number, created at or
// after since. A message to the number with another text (another campaign,
// an OTP) is not ours. The scan is conclusive only if it provably saw every
// message since then: it reached the end of the list, or, for a list sorted
// newest first, a message older than since; every candidate must carry its
// creation time and text.
func lookupSMS(ctx context.Context, r DLRReader, channelID, to, text string, since time.Time) (oneroute.SMSMessage, verdict) {
	const size = 100
	want := oneroute.Phone(to)
	for page := 1; page <= maxLookupPages; page++ {
		msgs, _, err := r.FetchSMSMessagesTo(ctx, channelID, to, oneroute.Page{Size: size, Number: page})
		if err != nil {
			switch oneroute.Classify(err) {
			case oneroute.Temporary, oneroute.Throttled, oneroute.Ambiguous:
				return oneroute.SMSMessage{}, retryLookup
			}
			if errors.Is(err, context.Canceled) {
				return oneroute.SMSMessage{}, retryLookup
			}
			return oneroute.SMSMessage{}, inconclusive
		}
		newestFirst := len(msgs) > 1 && !msgs[0].CreatedAt.Before(msgs[len(msgs)-1].CreatedAt)
		older := false
		for _, m := range msgs {
			if m.CreatedAt.IsZero() {
				return oneroute.SMSMessage{}, inconclusive
			}
			if m.CreatedAt.Before(since) {
				older = true
				continue
			}
			if oneroute.Phone(m.To) != want {
				continue
			}
			if m.Message == "" {
				return oneroute.SMSMessage{}, inconclusive // cannot tell ours from another message
			}
			if m.Message == text {
				return m, found
			}
		}
		if len(msgs) < size || (newestFirst && older) {
			return oneroute.SMSMessage{}, absent
		}
	}
	return oneroute.SMSMessage{}, inconclusive
}
