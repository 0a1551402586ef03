package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
)

// Ledger is what the Applier needs of the store; *storage.Store implements
// it.
type Ledger interface {
	EnsureHookGroup(ctx context.Context) error
	ReadHooks(ctx context.Context, consumer string, count int, block, idle time.Duration) ([]storage.StreamEvent, error)
	AckHooks(ctx context.Context, ids []string, later []storage.Deferred) error
	DueHooks(ctx context.Context, now time.Time, n int) ([]storage.Deferred, error)
	SettleDeferred(ctx context.Context, done, again []storage.Deferred) error
	ReportCampaigns(ctx context.Context, since time.Time) ([]string, error)
	RowsOf(ctx context.Context, id string, pids []string) ([]int, error)
	Record(ctx context.Context, id string, mode storage.Mode, token string, outs []campaigns.Outcome) (int, error)
	MarkHooked(ctx context.Context, ids []string, ttl time.Duration) error
}

var _ Ledger = (*storage.Store)(nil)

// InboundFunc handles an inbound customer message (newMessage): opt-outs,
// session windows. An error leaves the event in the stream, to be applied
// again.
type InboundFunc func(ctx context.Context, ev *oneroute.NewMessage) error

// CompletedFunc handles a campaignCompleted event after its messages'
// statuses were recorded.
type CompletedFunc func(ctx context.Context, ev *oneroute.CampaignCompleted) error

// ApplierOptions configures an Applier.
type ApplierOptions struct {
	// Batch is how many events one round reads and applies; default 512.
	Batch int
	// Block is how long a read waits for events; default 1s.
	Block time.Duration
	// ClaimIdle is how long an event read by another applier stays
	// unacknowledged before this one takes it over; default 1m. Such
	// events are looked for every ClaimIdle/4.
	ClaimIdle time.Duration
	// Linger is how long a round that found less than a full batch waits
	// before the next one, so that events are applied in batches rather
	// than one round trip each; default 50ms.
	Linger time.Duration
	// OrphanFor is how long a report whose message is not known yet (its
	// send not recorded yet, or another system's message) is tried again
	// before it is dropped; default 10m.
	OrphanFor time.Duration
	// LiveFor is how long after its last report by webhook a campaign
	// counts as receiving its reports that way (its sweep reads none and
	// expires none meanwhile); default storage.HookLiveTTL (30s).
	LiveFor time.Duration
	// Horizon is how far back (by creation) campaigns are considered for
	// SMS delivery reports; default 8 days.
	Horizon time.Duration
	// Consumer names this applier in the stream's consumer group; default
	// host name, process id and a random suffix.
	Consumer string
	// Inbound and Completed are called for those events; nil ignores them.
	Inbound   InboundFunc
	Completed CompletedFunc
	// Logger; default none.
	Logger zerolog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Applier feeds recorded webhook events to the ledger, through the same
// transitions as the delivery-report polls and sweeps (storage.ModeDLR),
// so a report that arrives both ways counts once:
//
//   - smsDeliveryReport: delivered or undelivered, found by provider
//     message id in the provider-id index of the campaigns awaiting
//     reports; the campaign is then marked as receiving reports by
//     webhook, and its sweep reads none (storage.HookedReports).
//   - messageStatus and the messages of campaignCompleted: WhatsApp
//     delivered, read or failed, found by identifier (fanout:<cid>:<row>).
//   - newMessage: InboundFunc; campaignCompleted: CompletedFunc.
//
// Events are acknowledged (and deleted from the stream) only once applied;
// a report whose message is not known yet is put off and tried again,
// backing off, for OrphanFor. Several appliers may run: each takes over
// events another left unacknowledged for ClaimIdle.
type Applier struct {
	st   Ledger
	opts ApplierOptions

	mu        sync.Mutex
	campaigns []string
	listedAt  time.Time

	claimedAt time.Time // the last look for events another applier left
	dueAt     time.Time // the last look for put-off events
}

// NewApplier returns an Applier on st.
func NewApplier(st Ledger, o ApplierOptions) *Applier {
	if o.Batch <= 0 {
		o.Batch = 512
	}
	if o.Block <= 0 {
		o.Block = time.Second
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = time.Minute
	}
	if o.Linger <= 0 {
		o.Linger = 50 * time.Millisecond
	}
	if o.OrphanFor <= 0 {
		o.OrphanFor = 10 * time.Minute
	}
	if o.Horizon <= 0 {
		o.Horizon = 8 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Consumer == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		o.Consumer = host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	}
	return &Applier{st: st, opts: o}
}

// Run applies events until ctx is done; it returns nil then. Redis errors
// are logged and retried with backoff.
func (a *Applier) Run(ctx context.Context) error {
	log := a.opts.Logger
	fails := 0
	backoff := func(err error) bool {
		fails++
		log.Error().Err(err).Int("failures", fails).Msg("webhook applier")
		t := time.NewTimer(min(100*time.Millisecond<<min(fails, 7), 10*time.Second))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for ctx.Err() == nil {
		if err := a.st.EnsureHookGroup(ctx); err != nil {
			if !backoff(err) {
				return nil
			}
			continue
		}
		break
	}
	linger := time.NewTimer(0)
	defer linger.Stop()
	for ctx.Err() == nil {
		n, err := a.Round(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !backoff(err) {
				return nil
			}
			continue
		}
		fails = 0
		if n > 0 && n < a.opts.Batch {
			linger.Reset(a.opts.Linger)
			select {
			case <-ctx.Done():
			case <-linger.C:
			}
		}
	}
	return nil
}

// Round reads one batch of events (waiting up to Block), applies and
// acknowledges them, then retries the put-off events that are due. It
// returns how many stream events it applied.
func (a *Applier) Round(ctx context.Context) (int, error) {
	now := a.opts.Now()
	idle := time.Duration(0) // no look for events another applier left
	if now.Sub(a.claimedAt) >= a.opts.ClaimIdle/4 {
		idle, a.claimedAt = a.opts.ClaimIdle, now
	}
	evs, err := a.st.ReadHooks(ctx, a.opts.Consumer, a.opts.Batch, a.opts.Block, idle)
	if err != nil {
		return 0, err
	}
	now = a.opts.Now()
	if len(evs) > 0 {
		bodies := make([][]byte, len(evs))
		for i, e := range evs {
			bodies[i] = e.Body
		}
		orphans, err := a.apply(ctx, bodies)
		if err != nil {
			return 0, err
		}
		later := make([]storage.Deferred, 0, len(orphans))
		for _, i := range orphans {
			later = append(later, storage.Deferred{FirstSeen: now, Due: now.Add(retryIn(0)), Body: evs[i].Body})
		}
		ids := make([]string, len(evs))
		for i, e := range evs {
			ids[i] = e.ID
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err = a.st.AckHooks(wctx, ids, later)
		cancel()
		if err != nil {
			return 0, err
		}
	}
	return len(evs), a.retryDue(ctx, now)
}

// retryIn is how long after its first sight (age) an orphan is tried
// again: 1s, then doubling up to a minute.
func retryIn(age time.Duration) time.Duration {
	return min(max(age, time.Second), time.Minute)
}

// retryDue applies the put-off events that are due once more; it looks
// for them at most every 250ms.
func (a *Applier) retryDue(ctx context.Context, now time.Time) error {
	if now.Sub(a.dueAt) < 250*time.Millisecond {
		return nil
	}
	a.dueAt = now
	due, err := a.st.DueHooks(ctx, now, a.opts.Batch)
	if err != nil || len(due) == 0 {
		return err
	}
	bodies := make([][]byte, len(due))
	for i, d := range due {
		bodies[i] = d.Body
	}
	orphans, err := a.apply(ctx, bodies)
	if err != nil {
		return err
	}
	still := map[int]bool{}
	for _, i := range orphans {
		still[i] = true
	}
	var done, again []storage.Deferred
	for i, d := range due {
		switch age := now.Sub(d.FirstSeen); {
		case !still[i]:
			done = append(done, d)
		case age >= a.opts.OrphanFor:
			a.opts.Logger.Warn().Str("event", string(d.Body)).Dur("age", age).Msg("webhook report of an unknown message dropped")
			done = append(done, d)
		default:
			next := d
			next.Due = now.Add(retryIn(age))
			done = append(done, d) // its score changes: remove, then add
			again = append(again, next)
		}
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return a.st.SettleDeferred(wctx, done, again)
}

// apply applies events and returns the indexes of the SMS reports whose
// message no campaign awaits (yet).
func (a *Applier) apply(ctx context.Context, bodies [][]byte) (orphans []int, err error) {
	var (
		sms     []int    // indexes of SMS reports
		pids    []string // their provider ids
		states  []byte   // their final states
		byCamp  = map[string][]campaigns.Outcome{}
		inbound []*oneroute.NewMessage
		done    []*oneroute.CampaignCompleted
	)
	for i, b := range bodies {
		ev, err := oneroute.ParseEvent(b)
		if err != nil {
			// Verified before it was recorded: only a bug gets here.
			a.opts.Logger.Error().Err(err).Msg("recorded webhook event does not parse; dropped")
			continue
		}
		switch e := ev.(type) {
		case *oneroute.DLR:
			if st := smsState(e.Conversation.Status); st != 0 {
				sms = append(sms, i)
				pids = append(pids, e.Conversation.ID)
				states = append(states, st)
			}
		case *oneroute.MessageStatus:
			if cid, out, ok := waOutcome(e.Message.Identifier, e.Message.Status, e.Message.ExternalID); ok {
				byCamp[cid] = append(byCamp[cid], out)
			}
		case *oneroute.CampaignCompleted:
			for _, m := range e.Messages {
				if cid, out, ok := waOutcome(m.Identifier, m.Status, m.Response); ok {
					byCamp[cid] = append(byCamp[cid], out)
				}
			}
			done = append(done, e)
		case *oneroute.NewMessage:
			inbound = append(inbound, e)
		}
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if len(sms) > 0 {
		found, err := a.locate(wctx, pids)
		if err != nil {
			return nil, err
		}
		for j, i := range sms {
			f, ok := found[pids[j]]
			if !ok {
				orphans = append(orphans, i)
				continue
			}
			byCamp[f.campaign] = append(byCamp[f.campaign], campaigns.Outcome{Row: f.row, State: states[j], Value: pids[j]})
		}
	}
	var hooked []string
	for _, cid := range sortedKeys(byCamp) {
		if _, err := a.st.Record(wctx, cid, storage.ModeDLR, "", byCamp[cid]); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			return nil, err
		}
		hooked = append(hooked, cid)
	}
	if err := a.st.MarkHooked(wctx, hooked, a.opts.LiveFor); err != nil {
		return nil, err
	}
	for _, e := range inbound {
		if a.opts.Inbound != nil {
			if err := a.opts.Inbound(wctx, e); err != nil {
				return nil, err
			}
		}
	}
	for _, e := range done {
		if a.opts.Completed != nil {
			if err := a.opts.Completed(wctx, e); err != nil {
				return nil, err
			}
		}
	}
	return orphans, nil
}

// location is where a provider message id belongs.
type location struct {
	campaign string
	row      int
}

// locate finds each provider id among the awaited SMS of the campaigns
// awaiting reports: one RowsOf script per such campaign.
func (a *Applier) locate(ctx context.Context, pids []string) (map[string]location, error) {
	cids, err := a.reportCampaigns(ctx)
	if err != nil {
		return nil, err
	}
	found := make(map[string]location, len(pids))
	left := pids
	for _, cid := range cids {
		if len(left) == 0 {
			break
		}
		rows, err := a.st.RowsOf(ctx, cid, left)
		if err != nil {
			return nil, err
		}
		var rest []string
		for i, r := range rows {
			if r >= 0 {
				found[left[i]] = location{cid, r}
			} else {
				rest = append(rest, left[i])
			}
		}
		left = rest
	}
	return found, nil
}

// reportCampaigns lists the campaigns awaiting SMS reports, listed again
// at most every second.
func (a *Applier) reportCampaigns(ctx context.Context) ([]string, error) {
	now := a.opts.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.campaigns != nil && now.Sub(a.listedAt) < time.Second {
		return a.campaigns, nil
	}
	cids, err := a.st.ReportCampaigns(ctx, now.Add(-a.opts.Horizon))
	if err != nil {
		return nil, err
	}
	// Newest first: reports are mostly of the campaigns sending now.
	for i, j := 0, len(cids)-1; i < j; i, j = i+1, j-1 {
		cids[i], cids[j] = cids[j], cids[i]
	}
	if cids == nil {
		cids = []string{}
	}
	a.campaigns, a.listedAt = cids, now
	return cids, nil
}

// smsState is the ledger state of a final SMS delivery status, or 0.
func smsState(status string) byte {
	switch status {
	case oneroute.DLRDelivered:
		return storage.LedgerDelivered
	case oneroute.DLRUndelivered:
		return storage.LedgerUndelivered
	}
	return 0
}

// waOutcome is the ledger outcome of a WhatsApp status of a message fanout
// sent (its identifier is fanout's): delivered, read or failed; "sent" and
// unknown statuses change nothing.
func waOutcome(identifier, status, value string) (string, campaigns.Outcome, bool) {
	cid, row, ok := campaigns.ParseIdentifier(identifier)
	if !ok {
		return "", campaigns.Outcome{}, false
	}
	var st byte
	switch status {
	case "delivered":
		st = storage.LedgerDelivered
	case "read":
		st = storage.LedgerRead
	case "failed":
		st = storage.LedgerUndelivered
	default:
		return "", campaigns.Outcome{}, false
	}
	return cid, campaigns.Outcome{Row: row, State: st, Value: value}, true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
