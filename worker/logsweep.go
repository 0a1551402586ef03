package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// The log sweep is the dlr:sweep of a WhatsApp template or email campaign
// (tasks.DLRSweep.Channel set): the fallback for the statuses no webhook
// brought within Options.StatusFallbackAfter.
//
// Every WhatsApp message and email carries its row's identifier
// (campaigns.Identifier), which OneRoute's logs show. A pass reads the
// account's logs of the campaign's medium in pages, newest first, back to a
// floor (at first the campaign's first send), and matches each row by its
// identifier alone: no index and no request per message. A log row counts
// once it is StatusFallbackAfter old (younger ones are left to the
// webhooks); its final status (delivered, read, failed) is recorded through
// the same ledger transitions (storage.ModeDLR) as the webhooks', so a
// status that arrives both ways counts once, and a read that follows a
// recorded delivery still counts as read. A message still sent or pending
// DLRMaxAge after its creation, and whatever is still awaited DLRMaxAge after
// the campaign's last send, count dlr_expired, so the campaign completes.
//
// The floor then moves up to the oldest row of the campaign not yet final
// (and younger than twice the fallback time, at least a minute) or not yet
// old enough (or else the newest row seen), so later passes read only the
// recent part of the logs; every so often (backing off to 10 minutes), and
// before the expiry, a pass reads back to the first send again for the
// rows left sent longer. Passes come while the campaign sends and
// after, backing off when they settle little, on the low-weight dlr queue;
// a 429 puts the sweep off for its Retry-After, so they never starve sends.
//
// Once a WhatsApp campaign completes (every message delivered, failed or
// expired), its sweep goes on with full passes, backing off, while some
// delivered messages are not read and its last send is younger than the
// read watch (ten times the fallback time, at most DLRMaxAge); a message
// read later counts as read only from its webhook. A pass reads at most
// Options.SweepPages pages.

// processLogs runs one pass of a log sweep and says when the next is due.
func (h *SweepHandler) processLogs(ctx context.Context, p tasks.DLRSweep) error {
	store := h.deps.Store
	st, err := store.DLRStatus(ctx, p.Campaign)
	if errors.Is(err, storage.ErrNotFound) {
		zerolog.Ctx(ctx).Warn().Msg("campaign not found; log sweep ends")
		return nil
	}
	if err != nil {
		return err
	}
	w, err := store.LoadSweep(ctx, p.Campaign)
	if err != nil {
		return err
	}
	now := time.Now()
	watch := false // completed, but WhatsApp reads may still come
	if st.Awaiting <= 0 {
		if watch = h.readsAwaited(ctx, p, st, now); !watch && h.finished(st, now) {
			return nil
		}
	}
	if st.Awaiting <= 0 && !watch {
		w.Idle++
		if err := store.SaveSweep(context.WithoutCancel(ctx), p.Campaign, w); err != nil {
			return err
		}
		return &notFailure{reason: "no status awaited yet", retryIn: min(h.opts.DLRInterval<<min(w.Idle, 10), time.Minute)}
	}
	fallback := h.opts.StatusFallbackAfter
	if due := st.StartedAt.Add(fallback); !st.StartedAt.IsZero() && now.Before(due) {
		// Nothing sent is old enough yet: the webhooks have their time.
		return &notFailure{reason: "statuses awaited from webhooks", retryIn: max(time.Until(due), time.Second)}
	}
	if watch {
		if now.UnixMilli() < w.StraggleAt {
			return &notFailure{reason: "reads awaited", retryIn: max(time.Until(time.UnixMilli(w.StraggleAt)), time.Second)}
		}
		w.StraggleAt = 0 // a full pass: delivered rows of any age may be read
	}
	s := &sweep{h: h, p: p, st: st, w: &w, now: now, settled: map[string]bool{}}
	ls := &logSweep{sweep: s}
	perr := ls.run(ctx)
	w.Passes++
	if s.count >= busyPass {
		w.Idle = 0
	} else {
		w.Idle++
	}
	if err := store.SaveSweep(context.WithoutCancel(ctx), p.Campaign, w); err != nil {
		return err
	}
	zerolog.Ctx(ctx).Debug().Int("settled", s.count).Int("pages", s.pages).Int64("awaiting", st.Awaiting).Msg("log sweep")
	var se *sweepErr
	if errors.As(perr, &se) {
		wait := h.wait(ctx, se.err, w.Idle)
		if se.soon {
			wait = h.opts.DLRInterval
		}
		return &notFailure{reason: "log sweep: " + se.Error(), retryIn: wait}
	}
	if perr != nil {
		return perr
	}
	if st, err = store.DLRStatus(ctx, p.Campaign); err == nil && st.Awaiting <= 0 && h.finished(st, time.Now()) &&
		!h.readsAwaited(ctx, p, st, time.Now()) {
		return nil
	}
	return &notFailure{reason: "statuses awaited", retryIn: ls.next()}
}

// readsAwaited reports that a completed WhatsApp campaign may still see
// delivered messages read: some are delivered and not read, and its last
// send is younger than the read watch (readWatch).
func (h *SweepHandler) readsAwaited(ctx context.Context, p tasks.DLRSweep, st storage.DLRStatus, now time.Time) bool {
	if ch := campaigns.Channel(p.Channel); (ch != campaigns.ChannelWhatsAppTemplate && ch != campaigns.ChannelWhatsAppCampaign) || st.State != campaigns.StateCompleted ||
		st.SettledAt.IsZero() || now.Sub(st.SettledAt) >= h.readWatch() {
		return false
	}
	pr, err := h.deps.Store.Progress(ctx, p.Campaign)
	return err == nil && pr.Delivered > pr.Read
}

// readWatch is how long after a WhatsApp campaign's last send the log sweep
// still looks for reads once the campaign completed: ten times the
// fallback time (20 minutes by default), at most DLRMaxAge. Later reads
// count from their webhooks only.
func (h *SweepHandler) readWatch() time.Duration {
	return min(10*h.opts.StatusFallbackAfter, h.opts.DLRMaxAge)
}

// logSweep is one pass of a log sweep; it shares the SMS sweep's pass state
// (counters, recording, expiry).
type logSweep struct {
	*sweep
	// pending is the earliest time a final log row seen not yet old enough
	// becomes due (zero: none).
	pending time.Time
}

// medium is the Logs API medium of the campaign's channel.
func (s *logSweep) medium() string {
	if campaigns.Channel(s.p.Channel) == campaigns.ChannelEmail {
		return "EMAIL"
	}
	return "WHATSAPP"
}

func (s *logSweep) run(ctx context.Context) error {
	if err := s.scan(ctx); err != nil {
		return err
	}
	if s.expiring() {
		return s.expireAll(ctx)
	}
	return nil
}

// scan reads the logs back to the floor, records the final statuses of the
// campaign's rows that are old enough, and moves the floor up.
func (s *logSweep) scan(ctx context.Context) error {
	aw, err := s.h.deps.Store.Awaited(ctx, s.p.Campaign)
	if err != nil {
		return err
	}
	pids := make(map[int]string, len(aw)) // awaited row -> provider id
	for _, a := range aw {
		pids[a.Row] = a.ID
	}
	o := s.h.opts
	fallback := o.StatusFallbackAfter
	// Every so often (backing off), and before the expiry, a pass reads
	// back to the first send: rows left sent longer than holdAge no longer
	// hold the floor back.
	full := s.w.StraggleAt == 0 || s.now.UnixMilli() >= s.w.StraggleAt || s.expiring()
	floor := s.w.Floor
	if floor == 0 || full {
		floor = s.st.StartedAt.Add(-clockSkew).UnixMilli()
	}
	if full {
		s.w.Straggles++
		s.w.StraggleAt = s.now.Add(min(max(o.DLRInterval, fallback)<<min(s.w.Straggles, 10), maxDLRInterval)).UnixMilli()
	}
	holdAge := max(2*fallback, time.Minute)
	stopAt := floor - sweepSkew.Milliseconds()
	var top, oldest int64 // newest row seen; oldest row of ours not settled by this pass
	size := s.pageSize()
	for page := 1; page <= s.h.opts.SweepPages; page++ {
		s.pages++
		s.w.Pages++
		rows, meta, err := s.h.deps.Provider.FetchLogs(ctx, oneroute.LogFilter{Medium: s.medium()}, oneroute.Page{Size: size, Number: page})
		if err != nil {
			err = fmt.Errorf("fetch %s logs, page %d of %d: %w", s.medium(), page, size, err)
			if size > smallPage && Decide(err) == FailPermanently {
				zerolog.Ctx(ctx).Warn().Err(err).Int("page_size", smallPage).Msg("logs refused; smaller pages from now on")
				s.w.PageSize = smallPage
				return &sweepErr{err: err, soon: true}
			}
			return &sweepErr{err: err}
		}
		if page == 1 && len(rows) > 0 && !rows[0].CreatedAt.IsZero() {
			top = rows[0].CreatedAt.UnixMilli()
		}
		var outs []campaigns.Outcome
		for _, e := range rows {
			row, ok := s.mine(e)
			if !ok {
				continue
			}
			out, settled := s.judgeLog(row, pids, e, fallback)
			if settled {
				outs = append(outs, out)
				continue
			}
			_, awaited := pids[row]
			if c := e.CreatedAt; awaited && !c.IsZero() && s.now.Sub(c) < holdAge && (oldest == 0 || c.UnixMilli() < oldest) {
				oldest = c.UnixMilli()
			}
		}
		if err := s.record(ctx, outs); err != nil {
			return err
		}
		if s.lastLog(rows, meta, page, size, stopAt) {
			switch {
			case oldest > 0:
				s.w.Floor = oldest
			case top > 0:
				s.w.Floor = top
			}
			s.w.FreshAt = s.now.UnixMilli()
			return nil
		}
	}
	return nil // capped: the floor stays, the next pass reads on
}

// mine returns the campaign row a log row names by its identifier.
func (s *logSweep) mine(e oneroute.LogEntry) (int, bool) {
	if e.Identifier == nil || !strings.HasPrefix(*e.Identifier, "fanout:") {
		return 0, false
	}
	cid, row, ok := campaigns.ParseIdentifier(*e.Identifier)
	return row, ok && cid == s.p.Campaign
}

// judgeLog is the outcome of one of the campaign's log rows: its final
// status once the row is fallback old, or expired once it is DLRMaxAge old
// and still not final. A read is recorded even for a row no longer awaited
// (delivered before: the ledger moves it on to read).
func (s *logSweep) judgeLog(row int, pids map[int]string, e oneroute.LogEntry, fallback time.Duration) (campaigns.Outcome, bool) {
	pid, awaited := pids[row]
	if !awaited {
		if e.Status != oneroute.LogRead || e.Response == nil {
			return campaigns.Outcome{}, false
		}
		pid = *e.Response
	}
	age := time.Duration(0)
	if !e.CreatedAt.IsZero() {
		age = s.now.Sub(e.CreatedAt)
	}
	st := StatusState(e.Status)
	switch {
	case e.CreatedAt.IsZero() && st != 0:
		return s.outcome(row, st, pid), true // no time to judge by: take it
	case st != 0 && age >= fallback:
		return s.outcome(row, st, pid), true
	case st == 0 && age >= s.h.opts.DLRMaxAge:
		return s.outcome(row, storage.LedgerDLRExpired, pid), true
	}
	// A final status not yet old enough is due at a known time; a row not
	// final yet may become so any time, and is left to the backoff.
	if due := e.CreatedAt.Add(fallback); st != 0 && (s.pending.IsZero() || due.Before(s.pending)) {
		s.pending = due
	}
	return campaigns.Outcome{}, false
}

// lastLog reports that page (of size rows) is the last to read before
// stopAt (Unix ms of OneRoute's createdAt).
func (s *logSweep) lastLog(rows []oneroute.LogEntry, meta *oneroute.Meta, page, size int, stopAt int64) bool {
	if len(rows) < size || (meta != nil && meta.Total > 0 && page*size >= meta.Total) {
		return true
	}
	c := rows[len(rows)-1].CreatedAt
	return !c.IsZero() && c.UnixMilli() < stopAt
}

// next is how long until the next pass: when the first row seen not yet
// due becomes due, backing off while passes settle little, never past the
// expiry of the campaign's last sends.
func (s *logSweep) next() time.Duration {
	o := s.h.opts
	d := min(max(o.DLRInterval, o.StatusFallbackAfter/2)<<min(s.w.Idle, 10), maxDLRInterval)
	if s.st.Sending {
		d = min(d, maxSweepWhileSending)
	}
	if !s.pending.IsZero() {
		d = min(d, max(time.Until(s.pending), o.DLRInterval))
	}
	if s.w.StraggleAt > 0 {
		d = min(d, time.Until(time.UnixMilli(s.w.StraggleAt)))
	}
	if !s.st.Sending && !s.st.SettledAt.IsZero() {
		// The expiry, then the end of the read watch.
		for _, at := range []time.Duration{o.DLRMaxAge, s.h.readWatch()} {
			if u := time.Until(s.st.SettledAt.Add(at)); u > 0 {
				d = min(d, u)
			}
		}
	}
	return max(d, time.Second)
}

// StatusState is the ledger state of a WhatsApp or email status, as the
// Logs API and the messageStatus webhook give it: delivered, read (counted
// in delivered too) and failed (undelivered); 0 for one not final (pending,
// sent). Record it with storage.ModeDLR and the provider message id as
// the outcome's Value, so that it counts once whichever way it came.
func StatusState(status string) byte {
	switch status {
	case oneroute.LogDelivered:
		return storage.LedgerDelivered
	case oneroute.LogRead:
		return storage.LedgerRead
	case oneroute.LogFailed:
		return storage.LedgerUndelivered
	}
	return 0
}
