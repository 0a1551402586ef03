package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// SMSLister lists a channel's SMS one page at a time, newest first
// (OneRoute's Fetch SMS Messages); *oneroute.Client implements it.
type SMSLister interface {
	FetchSMSMessages(ctx context.Context, channelID, status string, p oneroute.Page) ([]oneroute.SMSMessage, *oneroute.Meta, error)
}

// SweepHandler runs dlr:sweep tasks: it reads the delivery reports of a
// campaign's accepted SMS in bulk, from pages of its channel's message list,
// instead of one request per message. One sweep per campaign runs at a time
// (its task id is the campaign's); it comes back as a retry of itself while
// reports are awaited, and ends when the campaign is completed.
//
// A pass has up to three parts:
//
//   - fresh: while the campaign sends and shortly after, the channel's
//     messages (no status filter), newest first, back to the floor: the
//     oldest message still pending and younger than the straggler age, or
//     else the newest message of the previous pass. Each page's ids are
//     matched to rows through the campaign's provider-id index in one round
//     trip, and its final reports recorded in one script.
//   - stragglers: every so often (backing off), the channel's pending
//     messages back to the campaign's first send. Those older than
//     DLRMaxAge count dlr_expired. Once the campaign no longer sends and a
//     fresh part has read the messages after its last send was a straggler
//     age old, an awaited message that is in no list is read on its own
//     (GET /dlr/{id}/sms): these are the few that became final after the
//     fresh passes stopped looking.
//   - expiry: DLRMaxAge after the campaign's last send, whatever is still
//     awaited counts dlr_expired.
//
// Sweeps read pages one at a time on the low-weight dlr queue, at most
// Options.SweepPages pages per part, and a 429 puts the whole sweep off for
// its Retry-After, so they never starve sends.
type SweepHandler struct {
	deps Deps
	opts Options
}

const (
	// sweepSkew is how far behind the floor a fresh pass still reads: a
	// message accepted just before a page was read may be listed later.
	sweepSkew = 5 * time.Second
	// maxSweepWhileSending caps the backoff of a campaign still sending.
	maxSweepWhileSending = 2 * time.Minute
	// busyPass is how many reports a pass must settle for the next one to
	// come without backoff.
	busyPass = 100
	// lookupConcurrency bounds the per-message reads of a pass.
	lookupConcurrency = 4
	// errBackoffPasses caps the exponent of the backoff after an error
	// other than a 429: at most DLRInterval << 3 (40s at the default 5s).
	errBackoffPasses = 4
)

// straggleAge is how long a pending message holds the floor of the fresh
// passes back; older ones are stragglers. It is three times the
// delivery-report latency the sweep has seen (the 99th percentile of its
// passes) plus 2s, at least 5s, and at most a minute or half of DLRMaxAge, which is also what
// it is before any report was seen. A shorter age means fewer messages read
// again by every fresh pass.
func (s *sweep) straggleAge() time.Duration {
	most := min(time.Minute, s.h.opts.DLRMaxAge/2)
	if s.w.Latency <= 0 {
		return most
	}
	return min(max(3*time.Duration(s.w.Latency)*time.Millisecond+2*time.Second, 5*time.Second), most)
}

// learn keeps the 99th percentile of the latencies (ms) a fresh part saw,
// when it saw enough of them: at once when it grows, halfway when it
// shrinks.
func (s *sweep) learn(lat []int64) {
	if len(lat) < 20 {
		return
	}
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	if p99 >= s.w.Latency {
		s.w.Latency = p99
	} else {
		s.w.Latency = (s.w.Latency + p99) / 2
	}
}

// sweepErr is an error of OneRoute during a sweep: the sweep waits and
// comes back, without counting a task failure.
type sweepErr struct {
	err error
	// soon: come back after the first interval, whatever the error (the
	// sweep changed something, e.g. its page size).
	soon bool
}

func (e *sweepErr) Error() string { return e.err.Error() }
func (e *sweepErr) Unwrap() error { return e.err }

// ProcessTask implements asynq.Handler: one pass, then a not-a-failure
// error that brings the same task back after the pass's delay, or nil once
// the campaign no longer needs a sweep.
func (h *SweepHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p tasks.DLRSweep
	if err := tasks.Decode(t.Payload(), &p); err != nil {
		return skip(err)
	}
	if campaigns.Channel(p.Channel).TrackedByLogs() {
		return h.processLogs(ctx, p) // WhatsApp and email: logsweep.go
	}
	store := h.deps.Store
	st, err := store.DLRStatus(ctx, p.Campaign)
	if errors.Is(err, storage.ErrNotFound) {
		zerolog.Ctx(ctx).Warn().Msg("campaign not found; sweep ends")
		return nil
	}
	if err != nil {
		return err
	}
	w, err := store.LoadSweep(ctx, p.Campaign)
	if err != nil {
		return err
	}
	// Reports arriving by webhook need no reading: the pass then reads
	// and expires nothing (see sweep.hooked).
	hooked, err := store.HookedReports(ctx, p.Campaign)
	if err != nil {
		return err
	}
	now := time.Now()
	if st.Awaiting <= 0 {
		if h.finished(st, now) {
			return nil
		}
		w.Idle++
		if err := store.SaveSweep(context.WithoutCancel(ctx), p.Campaign, w); err != nil {
			return err
		}
		return &notFailure{reason: "no delivery report awaited yet", retryIn: min(h.opts.DLRInterval<<min(w.Idle, 10), time.Minute)}
	}
	s := &sweep{h: h, p: p, st: st, w: &w, now: now, settled: map[string]bool{}, hooked: hooked}
	perr := s.run(ctx)
	w.Passes++
	if s.count >= busyPass {
		w.Idle = 0
	} else {
		w.Idle++
	}
	if err := store.SaveSweep(context.WithoutCancel(ctx), p.Campaign, w); err != nil {
		return err
	}
	zerolog.Ctx(ctx).Debug().Int("settled", s.count).Int("pages", s.pages).Int("lookups", s.lookups).Int64("awaiting", st.Awaiting).Msg("delivery-report sweep")
	var se *sweepErr
	if errors.As(perr, &se) {
		// The backoff after OneRoute's error grows with the idle passes,
		// but only a little: by the end of a campaign most passes are
		// idle, and a 5xx on the pass that expires or looks up the last
		// reports must not put it off for minutes (errBackoffPasses).
		wait := h.wait(ctx, se.err, min(w.Idle, errBackoffPasses))
		if se.soon {
			wait = h.opts.DLRInterval
		}
		return &notFailure{reason: "delivery-report sweep: " + se.Error(), retryIn: wait}
	}
	if perr != nil {
		return perr
	}
	if st, err = store.DLRStatus(ctx, p.Campaign); err == nil && st.Awaiting <= 0 && h.finished(st, time.Now()) {
		return nil
	}
	return &notFailure{reason: "delivery reports awaited", retryIn: s.next()}
}

// finished reports that a campaign with no report awaited needs no sweep:
// it is completed or gone, or it has been paused or cancelled long enough
// that no send of it can still be recorded (a later resume enqueues a new
// sweep with its first accepted send).
func (h *SweepHandler) finished(st storage.DLRStatus, now time.Time) bool {
	switch st.State {
	case campaigns.StateCompleted:
		return true
	case campaigns.StatePaused, campaigns.StateCancelled:
		return now.Sub(st.UpdatedAt) > h.opts.staleAfter()
	}
	return false
}

// wait is how long the sweep waits after OneRoute's error: Retry-After
// for a 429, a backoff otherwise.
func (h *SweepHandler) wait(ctx context.Context, err error, n int) time.Duration {
	switch Decide(err) {
	case Reschedule:
		return max(oneroute.RetryAfter(err), time.Second)
	case PauseCampaign:
		zerolog.Ctx(ctx).Error().Err(err).Msg("delivery reports refused: API key rejected")
		return time.Minute
	case FailPermanently:
		zerolog.Ctx(ctx).Error().Err(err).Msg("delivery reports refused")
		return maxDLRInterval
	}
	return Backoff(max(n, 1), h.opts.DLRInterval)
}

// sweep is one pass over a campaign's delivery reports.
type sweep struct {
	h   *SweepHandler
	p   tasks.DLRSweep
	st  storage.DLRStatus
	w   *storage.Sweep
	now time.Time
	// settled: provider ids recorded final or expired in this pass.
	settled map[string]bool
	// count is how many rows this pass settled; pages and lookups how many
	// requests it made.
	count, pages, lookups int
	// expiresAt is the earliest time a pending message seen in this pass
	// reaches DLRMaxAge (zero: none seen).
	expiresAt time.Time
	// hooked: the campaign's reports arrive by webhook (one did within
	// storage.HookLiveTTL). The pass reads no page and no report then: the
	// webhooks stand for the fresh part (the floor follows them, so a
	// fresh part after the webhooks stop reads only what they may have
	// missed), and nothing expires. Once they stop, the next pass is an
	// ordinary one: its stragglers' part reads, one by one, the awaited
	// reports that are no longer pending, and the expiry runs if due.
	hooked bool
}

func (s *sweep) run(ctx context.Context) error {
	if s.hooked {
		// Nothing expires while reports still arrive: the first pass after
		// they stop (next) expires what is left.
		s.w.FreshAt = s.now.UnixMilli()
		s.w.Floor = max(s.w.Floor, s.now.Add(-s.straggleAge()-clockSkew).UnixMilli())
		return nil
	}
	if s.fresh() {
		if err := s.scanFresh(ctx); err != nil {
			return err
		}
	}
	if s.straggleDue() || s.expiring() {
		var se *sweepErr
		if err := s.scanPending(ctx); err != nil && !(errors.As(err, &se) && s.overdue()) {
			return err
		}
	}
	if s.expiring() {
		return s.expireAll(ctx)
	}
	return nil
}

// fresh: the campaign sends, or no pass has read the channel's messages
// since its last send was a straggler age old (when every report but the
// stragglers' should be final), however late the sweep comes back.
func (s *sweep) fresh() bool {
	return s.st.Sending || s.w.FreshAt < s.st.SettledAt.Add(s.straggleAge()).UnixMilli()
}

func (s *sweep) straggleDue() bool {
	at := s.w.StraggleAt
	if at == 0 {
		at = s.st.StartedAt.Add(s.straggleAge()).UnixMilli()
	}
	return s.now.UnixMilli() >= at
}

// expiring: the campaign's last send is older than DLRMaxAge, so every
// report still awaited has expired.
func (s *sweep) expiring() bool {
	return s.sentFor(s.h.opts.DLRMaxAge)
}

// sentFor: the campaign no longer sends and its last send is at least d old.
func (s *sweep) sentFor(d time.Duration) bool {
	return !s.st.Sending && !s.st.SettledAt.IsZero() && s.now.Sub(s.st.SettledAt) >= d
}

// next is how long until the next pass: soon while reports come in (backing
// off when passes settle little), then when the next straggler pass or the
// expiry is due.
func (s *sweep) next() time.Duration {
	o := s.h.opts
	if s.hooked && s.expiring() {
		return max(o.DLRInterval, time.Second) // until the webhooks have stopped
	}
	d := maxDLRInterval
	if s.st.Sending {
		// Every fresh pass reads again what the straggler age holds back:
		// passes half of it apart read each message about three times.
		d = min(max(o.DLRInterval, s.straggleAge()/2)<<min(s.w.Idle, 10), maxSweepWhileSending)
	} else if s.fresh() {
		// The pass that reads the last sends' reports, once they are due.
		d = min(d, max(time.Until(s.st.SettledAt.Add(s.straggleAge())), o.DLRInterval))
	}
	if s.w.StraggleAt > 0 {
		d = min(d, time.Until(time.UnixMilli(s.w.StraggleAt)))
	}
	if !s.st.Sending && !s.st.SettledAt.IsZero() {
		// The expiry, then the expiry of rows outside the index.
		for _, at := range []time.Duration{o.DLRMaxAge, o.DLRMaxAge + orphanGrace} {
			if u := time.Until(s.st.SettledAt.Add(at)); u > 0 {
				d = min(d, u)
				break
			}
		}
	}
	return max(d, time.Second)
}

// list reads one page of the channel's messages with the status filter.
func (s *sweep) list(ctx context.Context, status string, page int) ([]oneroute.SMSMessage, *oneroute.Meta, error) {
	s.pages++
	s.w.Pages++
	size := s.pageSize()
	msgs, meta, err := s.h.deps.Provider.FetchSMSMessages(ctx, s.p.ChannelID, status, oneroute.Page{Size: size, Number: page})
	if err != nil {
		err = fmt.Errorf("list %s messages of channel %s, page %d of %d: %w", status, s.p.ChannelID, page, size, err)
		if size > smallPage && Decide(err) == FailPermanently {
			// OneRoute publishes no largest page size: a refusal may be
			// this one. Go on with pages of the client's default size.
			zerolog.Ctx(ctx).Warn().Err(err).Int("page_size", smallPage).Msg("list refused; smaller pages from now on")
			s.w.PageSize = smallPage
			return nil, nil, &sweepErr{err: err, soon: true}
		}
		return nil, nil, &sweepErr{err: err}
	}
	return msgs, meta, nil
}

// smallPage is the page size the sweep falls back to when a larger one is
// refused: the client's default, which OneRoute's own examples use.
const smallPage = 100

// pageSize is page[size] of the sweep's list requests: Options.SweepPageSize,
// or smallPage once OneRoute refused a larger one.
func (s *sweep) pageSize() int {
	if s.w.PageSize > 0 {
		return s.w.PageSize
	}
	return s.h.opts.SweepPageSize
}

// last reports that page (of size messages) is the last one to read before
// stopAt (Unix ms of OneRoute's createdAt).
func (s *sweep) last(msgs []oneroute.SMSMessage, meta *oneroute.Meta, page int, stopAt int64) bool {
	size := s.pageSize()
	if len(msgs) < size || (meta != nil && meta.Total > 0 && page*size >= meta.Total) {
		return true
	}
	c := msgs[len(msgs)-1].CreatedAt
	return !c.IsZero() && c.UnixMilli() < stopAt
}

// scanFresh reads the channel's messages back to the floor, records the
// final reports among them and moves the floor up.
func (s *sweep) scanFresh(ctx context.Context) error {
	floor := s.w.Floor
	if floor == 0 {
		// Redis' clock (the first send) against OneRoute's (createdAt).
		floor = s.st.StartedAt.Add(-clockSkew).UnixMilli()
	}
	stopAt := floor - sweepSkew.Milliseconds()
	var top, oldest int64 // newest message seen; oldest fresh pending of ours
	var lat []int64       // delivery-report latencies of ours, ms
	young := s.straggleAge()
	for page := 1; page <= s.h.opts.SweepPages; page++ {
		msgs, meta, err := s.list(ctx, "", page)
		if err != nil {
			return err
		}
		if page == 1 && len(msgs) > 0 && !msgs[0].CreatedAt.IsZero() {
			top = msgs[0].CreatedAt.UnixMilli()
		}
		// Only final and young pending messages matter here: stragglers
		// are left to scanPending, and are not looked up.
		var mine []oneroute.SMSMessage
		for _, m := range msgs {
			if finalState(m.Status) != 0 || m.CreatedAt.IsZero() || s.now.Sub(m.CreatedAt) < young {
				mine = append(mine, m)
			}
		}
		pids := make([]string, len(mine))
		for i, m := range mine {
			pids[i] = m.ID
		}
		rows, err := s.h.deps.Store.RowsOf(ctx, s.p.Campaign, pids)
		if err != nil {
			return err
		}
		var outs []campaigns.Outcome
		for i, m := range mine {
			if rows[i] < 0 {
				continue
			}
			if st := finalState(m.Status); st != 0 {
				outs = append(outs, s.outcome(rows[i], st, m.ID))
				if m.DeliveredTime != nil && !m.CreatedAt.IsZero() {
					lat = append(lat, m.DeliveredTime.Sub(m.CreatedAt).Milliseconds())
				}
				continue
			}
			if c := m.CreatedAt; !c.IsZero() && s.now.Sub(c) < young && (oldest == 0 || c.UnixMilli() < oldest) {
				oldest = c.UnixMilli()
			}
		}
		if err := s.record(ctx, outs); err != nil {
			return err
		}
		if s.last(msgs, meta, page, stopAt) {
			// The whole range was read: the next pass starts at the oldest
			// message still expected soon, or else where this one started.
			s.w.FreshAt = s.now.UnixMilli()
			s.learn(lat)
			switch {
			case oldest > 0:
				s.w.Floor = oldest
			case top > 0:
				s.w.Floor = top
			}
			return nil
		}
	}
	return nil // capped: the floor stays, the stragglers' pass catches up
}

// scanPending reads the channel's pending messages back to the campaign's
// first send: those of the campaign older than DLRMaxAge expire. Once the
// fresh passes are over (see fresh), an awaited message in no list is read
// on its own.
func (s *sweep) scanPending(ctx context.Context) error {
	o := s.h.opts
	s.w.Straggles++
	s.w.StraggleAt = s.now.Add(min(o.DLRInterval<<min(s.w.Straggles, 10), maxDLRInterval)).UnixMilli()
	aw, err := s.h.deps.Store.Awaited(ctx, s.p.Campaign)
	if err != nil {
		return err
	}
	rows := make(map[string]int, len(aw))
	for _, a := range aw {
		if !s.settled[a.ID] {
			rows[a.ID] = a.Row
		}
	}
	if len(rows) == 0 {
		return nil
	}
	stopAt := s.st.StartedAt.Add(-clockSkew).UnixMilli()
	seen := map[string]bool{}
	reached := false
	for page := 1; page <= o.SweepPages && !reached; page++ {
		msgs, meta, err := s.list(ctx, oneroute.DLRPending, page)
		if err != nil {
			return err
		}
		var outs []campaigns.Outcome
		for _, m := range msgs {
			row, ok := rows[m.ID]
			if !ok {
				continue
			}
			seen[m.ID] = true
			if out, ok := s.judge(row, m); ok {
				outs = append(outs, out)
			}
		}
		if err := s.record(ctx, outs); err != nil {
			return err
		}
		reached = s.last(msgs, meta, page, stopAt)
	}
	if reached && !s.fresh() {
		// A pass read the fresh messages after the last send was a
		// straggler age old: what no list shows now is a straggler that
		// became final since.
		var missing []storage.Awaiting
		for id, row := range rows {
			if !seen[id] && !s.settled[id] {
				missing = append(missing, storage.Awaiting{ID: id, Row: row})
			}
		}
		if err := s.lookup(ctx, missing[:min(len(missing), o.SweepLookups)]); err != nil {
			return err
		}
	}
	if !s.expiresAt.IsZero() {
		// Come back when the oldest pending one expires, but not sooner
		// than the first interval.
		at := max(s.expiresAt.UnixMilli(), s.now.Add(o.DLRInterval).UnixMilli())
		s.w.StraggleAt = min(s.w.StraggleAt, at)
	}
	return nil
}

// judge is the outcome of an awaited message as listed or read: final,
// expired (pending for DLRMaxAge), or none yet.
func (s *sweep) judge(row int, m oneroute.SMSMessage) (campaigns.Outcome, bool) {
	if st := finalState(m.Status); st != 0 {
		return s.outcome(row, st, m.ID), true
	}
	if m.CreatedAt.IsZero() {
		return campaigns.Outcome{}, false
	}
	exp := m.CreatedAt.Add(s.h.opts.DLRMaxAge)
	if !s.now.Before(exp) {
		return s.outcome(row, storage.LedgerDLRExpired, m.ID), true
	}
	if s.expiresAt.IsZero() || exp.Before(s.expiresAt) {
		s.expiresAt = exp
	}
	return campaigns.Outcome{}, false
}

// lookup reads the reports of awaited messages one by one (GET
// /dlr/{id}/sms), lookupConcurrency at a time, and records them. It stops
// at a 429.
func (s *sweep) lookup(ctx context.Context, items []storage.Awaiting) error {
	if len(items) == 0 {
		return nil
	}
	type read struct {
		out campaigns.Outcome
		ok  bool
		err error
	}
	res := make([]read, len(items))
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, lookupConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, it := range items {
		select {
		case sem <- struct{}{}:
		case <-lctx.Done():
		}
		if lctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d, err := s.h.deps.Provider.GetSMSDLR(lctx, it.ID)
			if err != nil {
				res[i].err = err
				if Decide(err) == Reschedule {
					cancel() // OneRoute asks to slow down: stop here
				}
				return
			}
			mu.Lock()
			defer mu.Unlock()
			res[i].out, res[i].ok = s.judge(it.Row, d.Conversation)
		}()
		s.lookups++
		s.w.Lookups++
	}
	wg.Wait()
	var outs []campaigns.Outcome
	var throttled, failed error
	for i, r := range res {
		switch {
		case r.ok:
			outs = append(outs, r.out)
		case r.err != nil && Decide(r.err) == Reschedule:
			throttled = r.err
		case r.err != nil && Decide(r.err) != FailPermanently:
			// A 5xx or a timeout: read it again next pass rather than let
			// this pass's expiry count a report that may be final.
			failed = r.err
		case r.err != nil:
			zerolog.Ctx(ctx).Debug().Err(r.err).Str("message", items[i].ID).Msg("read delivery report")
		}
	}
	if err := s.record(ctx, outs); err != nil {
		return err
	}
	if throttled != nil {
		return &sweepErr{err: fmt.Errorf("read delivery reports: %w", throttled)}
	}
	if failed != nil && !s.overdue() {
		return &sweepErr{err: fmt.Errorf("read delivery reports: %w", failed)}
	}
	return nil
}

// overdue: the expiry has been due for another DLRMaxAge. OneRoute errors
// no longer hold it back then (see run and lookup), so a campaign completes
// even when its reports cannot be read for that long.
func (s *sweep) overdue() bool {
	return s.sentFor(2 * s.h.opts.DLRMaxAge)
}

// orphanGrace is how long after the expiry the sweep waits for rows it
// cannot see in the index (accepted before the index existed, polled by
// dlr:poll tasks; or an index that expired first) before it expires them
// from the ledger itself.
const orphanGrace = time.Hour

// expireAll counts every report still awaited dlr_expired. Rows awaited but
// missing from the index are found in the ledger once orphanGrace has
// passed too, so the campaign always completes.
func (s *sweep) expireAll(ctx context.Context) error {
	aw, err := s.h.deps.Store.Awaited(ctx, s.p.Campaign)
	if err != nil {
		return err
	}
	outs := make([]campaigns.Outcome, 0, len(aw))
	for _, a := range aw {
		outs = append(outs, s.outcome(a.Row, storage.LedgerDLRExpired, a.ID))
	}
	if int64(len(aw)) < s.st.Awaiting && s.now.Sub(s.st.SettledAt) >= s.h.opts.DLRMaxAge+orphanGrace {
		err := s.h.deps.Store.Scan(ctx, s.p.Campaign, func(e storage.Entry) error {
			if e.State == storage.LedgerAccepted && !s.settled[e.Value] {
				outs = append(outs, s.outcome(e.Row, storage.LedgerDLRExpired, e.Value))
			}
			return nil
		})
		if err != nil {
			return err
		}
		zerolog.Ctx(ctx).Warn().Int64("awaiting", s.st.Awaiting).Int("indexed", len(aw)).Msg("delivery reports awaited outside the index expire from the ledger")
	}
	return s.record(ctx, outs)
}

func (s *sweep) outcome(row int, st byte, id string) campaigns.Outcome {
	s.settled[id] = true
	return campaigns.Outcome{Row: row, State: st, Value: id}
}

// record records final reports through the ledger (ModeDLR), so counters
// stay exact however often a pass repeats, even while the task is being
// cancelled.
func (s *sweep) record(ctx context.Context, outs []campaigns.Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	n, err := s.h.deps.Store.Record(rctx, s.p.Campaign, storage.ModeDLR, "", outs)
	if err != nil {
		return fmt.Errorf("record %d delivery reports: %w", len(outs), err)
	}
	s.count += n
	return nil
}

// finalState is the ledger state of a final delivery status, or 0.
func finalState(status string) byte {
	switch status {
	case oneroute.DLRDelivered:
		return storage.LedgerDelivered
	case oneroute.DLRUndelivered:
		return storage.LedgerUndelivered
	}
	return 0
}

// enqueueSweep makes sure the campaign's sweep is scheduled: it runs after
// delay unless one is already scheduled, running or waiting to run again.
func enqueueSweep(ctx context.Context, enq Enqueuer, p tasks.DLRSweep, delay time.Duration, o Options) error {
	return tasks.Enqueue(context.WithoutCancel(ctx), enq, tasks.Sweep(p, tasks.Options{Timeout: o.TaskTimeout, Delay: delay}))
}
