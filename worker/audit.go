package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// KeepCopies wraps an enqueuer so that every batch task (sms:send,
// whatsapp:template, email:send) and every delivery-report poll (dlr:poll)
// gets a durable copy in the store (storage.SaveCopy) before it is
// enqueued. The Auditor re-creates a task from its copy when the task was
// deleted, archived or lost with Redis' last writes. Give it to the
// dispatcher and to the workers' Deps; other task types (campaign:expand)
// pass through unchanged.
func KeepCopies(enq Enqueuer, store *storage.Store) Enqueuer {
	return &copier{enq: enq, store: store}
}

type copier struct {
	enq   Enqueuer
	store *storage.Store
}

func (c *copier) EnqueueContext(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	var cp *storage.Copy
	var campaign string
	switch t.Type() {
	case tasks.TypeSMSSend, tasks.TypeWhatsAppTemplate, tasks.TypeEmailSend, tasks.TypeWhatsAppSession, tasks.TypeWhatsAppCampaign, tasks.TypePushSend:
		var b campaigns.Batch
		if err := tasks.Decode(t.Payload(), &b); err != nil {
			return nil, err
		}
		campaign, cp = b.Campaign, &storage.Copy{Key: tasks.BatchKey(&b)}
		for _, it := range b.Items {
			cp.Rows = append(cp.Rows, it.Row)
		}
	case tasks.TypeDLRPoll:
		var p tasks.DLRPoll
		if err := tasks.Decode(t.Payload(), &p); err != nil {
			return nil, err
		}
		campaign, cp = p.Campaign, &storage.Copy{Key: strings.TrimPrefix(p.ID(), p.Campaign+":")}
		for _, it := range p.Items {
			cp.Rows = append(cp.Rows, it.Row)
		}
	}
	if cp != nil {
		cp.Payload = t.Payload()
		if err := c.store.SaveCopy(ctx, campaign, *cp); err != nil {
			return nil, err // no task without its copy: the caller retries
		}
	}
	return c.enq.EnqueueContext(ctx, t, opts...)
}

// AuditOptions tune the Auditor. A zero field takes its default.
type AuditOptions struct {
	// Interval is how often the leading worker audits; default 10s.
	Interval time.Duration
	// StallAfter is how long a running campaign with recipients left must
	// have made no progress before its tasks are checked; default 20s, and
	// never less than the request timeout + 5s (a claim younger than that
	// may still be in flight).
	StallAfter time.Duration
	// RequestTimeout is the OneRoute request timeout; default
	// config.DefaultOneRouteTimeout (15s).
	RequestTimeout time.Duration
	// TaskTimeout bounds a re-created task; default
	// config.DefaultTaskTimeout (5m).
	TaskTimeout time.Duration
	// Owner names this worker in the audit lead; default a random token.
	Owner string
}

// Auditor makes sure no campaign strands: a task deleted or archived
// outside fanout (from the Asynq UI, by an operator) leaves recipients that
// no task will ever send. One worker at a time (leader-elected through
// Redis) looks at the campaigns that have batch copies:
//
//   - a running campaign waiting for its send window (a worker noted its
//     next opening, still to come) is not stalled: its tasks are scheduled;
//   - a running campaign that made no progress for StallAfter has each
//     batch copy checked against asynq (Inspector.GetTaskInfo of its
//     deterministic task id); a batch whose task is gone, archived, or
//     active with an expired lease (an orphan asynq recovers only 30-90 s
//     later), and whose rows are not all final nor held by a live task, is
//     re-enqueued from its copy (an archived one run again, an orphan's
//     batch sent as a follow-up under a new id);
//   - the same for delivery-report polls of a campaign whose accepted SMS
//     await their reports (a lost poll would keep it from completing);
//   - a cancelled campaign has every row not final settled
//     (storage.SettleCancelled), whatever became of its tasks;
//   - a completed or deleted campaign has its copies dropped.
//
// Re-running a batch is always safe: the ledger sends only unsettled rows
// and reconciles those whose request started.
type Auditor struct {
	store *storage.Store
	insp  *asynq.Inspector
	enq   Enqueuer
	log   zerolog.Logger
	opts  AuditOptions
}

// NewAuditor builds an auditor on rdb. Run it in every worker process; only
// one audits at a time.
func NewAuditor(rdb redis.UniversalClient, store *storage.Store, log zerolog.Logger, o AuditOptions) *Auditor {
	base := Options{RequestTimeout: o.RequestTimeout, TaskTimeout: o.TaskTimeout}.withDefaults()
	o.RequestTimeout, o.TaskTimeout = base.RequestTimeout, base.TaskTimeout
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.StallAfter <= 0 {
		o.StallAfter = 20 * time.Second
	}
	o.StallAfter = max(o.StallAfter, base.staleAfter())
	if o.Owner == "" {
		o.Owner = storage.NewToken()
	}
	return &Auditor{store: store, insp: asynq.NewInspectorFromRedisClient(rdb),
		enq: KeepCopies(asynq.NewClientFromRedisClient(rdb), store), log: log.With().Str("component", "audit").Logger(), opts: o}
}

// Run audits every Interval while this worker leads, until ctx is done.
func (a *Auditor) Run(ctx context.Context) error {
	t := time.NewTicker(a.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		lead, err := a.store.LeadAudit(ctx, a.opts.Owner, 3*a.opts.Interval)
		if err != nil || !lead {
			continue
		}
		if err := a.Audit(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("audit round failed; trying again next round")
		}
	}
}

// Audit is one round over every campaign with batch copies.
func (a *Auditor) Audit(ctx context.Context) error {
	ids, err := a.store.Audited(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if err := a.auditCampaign(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("audit campaign %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func (a *Auditor) auditCampaign(ctx context.Context, id string) error {
	act, err := a.store.Activity(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return a.store.DropAllCopies(ctx, id)
	}
	if err != nil {
		return err
	}
	switch act.State {
	case campaigns.StateCompleted:
		if err := a.notifyCompleted(ctx, id); err != nil {
			return err // copies kept: the next round tries again
		}
		return a.store.DropAllCopies(ctx, id)
	case campaigns.StateCancelled:
		st, err := a.store.SettleCancelled(ctx, id, time.Now().Add(-a.opts.RequestTimeout-5*time.Second))
		if err == nil && st.Skipped+st.Abandoned > 0 {
			a.log.Info().Str("campaign", id).Int("skipped", st.Skipped).Int("abandoned", st.Abandoned).Int("in_flight", st.InFlight).Msg("settled a cancelled campaign's remaining recipients")
		}
		return err
	case campaigns.StateRunning, campaigns.StateDispatching, campaigns.StateSent:
		if act.NextOpening.After(time.Now()) && act.AwaitingDLR <= 0 {
			return nil // waiting for its send window (see window.go), not stalled
		}
		if (act.Pending <= 0 && act.AwaitingDLR <= 0) || time.Since(act.Last) < a.opts.StallAfter {
			return nil
		}
		if act.AwaitingDLR > 0 {
			// The campaign's delivery-report sweep may have been deleted:
			// make sure one is scheduled (a no-op while one exists).
			if err := a.ensureSweep(ctx, id); err != nil {
				return err
			}
		}
		return a.restore(ctx, id, act)
	}
	return nil // paused: nothing is expected to move
}

// ensureSweep schedules the campaign's dlr:sweep unless one is already
// scheduled, running or waiting to run again.
func (a *Auditor) ensureSweep(ctx context.Context, id string) error {
	spec, err := a.store.Spec(ctx, id)
	if err != nil {
		return err
	}
	if !spec.Channel.Tracked() {
		return nil
	}
	p := tasks.DLRSweep{Campaign: id, ChannelID: spec.ChannelID}
	if spec.Channel.TrackedByLogs() {
		p.Channel = string(spec.Channel)
	}
	return tasks.Enqueue(ctx, a.enq, tasks.Sweep(p, tasks.Options{Timeout: a.opts.TaskTimeout}))
}

// orphans lists the ids of the queue's active tasks whose lease expired:
// their worker crashed or lost Redis. asynq's recoverer requeues them only
// 30-90 s later (a pass every minute, for leases expired over 30 s ago).
func (a *Auditor) orphans(queue string) (map[string]bool, error) {
	out := map[string]bool{}
	const size = 500
	for page := 1; ; page++ {
		ts, err := a.insp.ListActiveTasks(queue, asynq.PageSize(size), asynq.Page(page))
		if errors.Is(err, asynq.ErrQueueNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list active tasks of %s: %w", queue, err)
		}
		for _, t := range ts {
			if t.IsOrphaned {
				out[t.ID] = true
			}
		}
		if len(ts) < size {
			return out, nil
		}
	}
}

// isPoll reports a copy of a dlr:poll task.
func isPoll(c storage.Copy) bool { return strings.HasPrefix(c.Key, "dlr:") }

// restore re-creates the batch tasks of a stalled campaign that were
// deleted or archived while rows they hold are not final.
func (a *Auditor) restore(ctx context.Context, id string, act storage.Activity) error {
	sendQueue := tasks.Queue(act.Channel)
	queueOf := func(c storage.Copy) string {
		if isPoll(c) {
			return tasks.QueueDLR
		}
		return sendQueue
	}
	type lost struct {
		c        storage.Copy
		archived bool
		orphaned bool
	}
	orphans, err := a.orphans(sendQueue)
	if err != nil {
		return err
	}
	var gone []lost
	live := map[bool]map[int]bool{false: {}, true: {}} // rows held by a task that exists, by kind (poll or send)
	err = a.store.Copies(ctx, id, func(chunk []storage.Copy) error {
		for _, c := range chunk {
			info, err := a.insp.GetTaskInfo(queueOf(c), id+":"+c.Key)
			switch {
			case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
				gone = append(gone, lost{c: c})
			case err != nil:
				return err
			case info.State == asynq.TaskStateArchived:
				gone = append(gone, lost{c: c, archived: true})
			case info.State == asynq.TaskStateActive && orphans[info.ID]:
				gone = append(gone, lost{c: c, orphaned: true})
			default:
				for _, r := range c.Rows {
					live[isPoll(c)][r] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var drop []string
	restored := 0
	for _, g := range gone {
		open, err := a.store.NotFinal(ctx, id, g.c.Rows)
		if isPoll(g.c) {
			open, err = a.store.AwaitingDLR(ctx, id, g.c.Rows)
		}
		if err != nil {
			return err
		}
		held := true
		for _, r := range open {
			held = held && live[isPoll(g.c)][r]
		}
		if held {
			// Every row is final, or a live task holds it (a follow-up).
			drop = append(drop, g.c.Key)
			continue
		}
		taskID := id + ":" + g.c.Key
		switch {
		case g.archived:
			if err := a.insp.RunTask(queueOf(g.c), taskID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
				return fmt.Errorf("run archived task %s: %w", taskID, err)
			}
		case isPoll(g.c):
			var p tasks.DLRPoll
			if err := tasks.Decode(g.c.Payload, &p); err != nil {
				return fmt.Errorf("poll copy %s: %w", taskID, err)
			}
			if err := tasks.Enqueue(ctx, a.enq, tasks.Poll(&p, tasks.Options{Timeout: a.opts.TaskTimeout})); err != nil {
				return err
			}
		default:
			var b campaigns.Batch
			if err := tasks.Decode(g.c.Payload, &b); err != nil {
				return fmt.Errorf("batch copy %s: %w", taskID, err)
			}
			if g.orphaned {
				// Its id is taken until asynq recovers it: send the batch
				// as a follow-up instead. When asynq runs the orphan later,
				// the ledger leaves it nothing to do.
				b.Attempt++
			}
			if err := tasks.Enqueue(ctx, a.enq, tasks.Send(&b, tasks.Options{Timeout: a.opts.TaskTimeout})); err != nil {
				return err
			}
		}
		restored++
		a.log.Warn().Str("campaign", id).Str("task", taskID).Bool("was_archived", g.archived).Bool("orphaned", g.orphaned).Int("open_rows", len(open)).
			Msg("a batch task was lost (deleted, archived, or active with an expired lease) with recipients left; re-created it")
	}
	if restored == 0 && len(gone) > 0 {
		a.log.Debug().Str("campaign", id).Int("dropped", len(drop)).Msg("stalled campaign: no batch to restore")
	}
	return a.store.DropCopies(ctx, id, drop...)
}
