package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
)

// ErrNotFound is returned for a campaign id the store does not know.
var ErrNotFound = errors.New("campaign not found")

// ErrSpecConflict is returned when a campaign id is reused with another spec.
var ErrSpecConflict = errors.New("campaign id already used by a different spec")

// Store keeps campaigns in Redis: their specs, states and progress
// counters, the send ledger, dispatch checkpoints and uploaded recipient
// files. Every key of one campaign shares the hash tag {id}, so the Lua
// scripts that touch several of them work on Redis Cluster. A Store is safe
// for concurrent use.
type Store struct {
	rdb redis.UniversalClient
	// indexTTL is how long provider-id index entries are kept (index.go).
	indexTTL time.Duration
}

// Option configures a Store.
type Option func(*Store)

// IndexTTL sets how long the provider-id index keeps an accepted SMS's
// entry after it is written (default DefaultIndexTTL). Set it above the
// workers' delivery-report max age (FANOUT_DLR_MAX_AGE): an entry that
// expires first can no longer be matched to its report.
func IndexTTL(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.indexTTL = d
		}
	}
}

// New returns a store on rdb.
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	s := &Store{rdb: rdb, indexTTL: DefaultIndexTTL}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Create records a new campaign in state dispatching. Creating the same spec
// again is a no-op that returns created=false, so a dispatch can be re-run.
func (s *Store) Create(ctx context.Context, spec campaigns.Spec) (created bool, err error) {
	js, err := json.Marshal(spec)
	if err != nil {
		return false, err
	}
	sum := sha256.Sum256(js)
	dlr := "0"
	if spec.Channel.Tracked() {
		dlr = "1"
	}
	now := time.Now()
	n, err := createScript.Run(ctx, s.rdb, []string{campaignKey(spec.ID)},
		js, hex.EncodeToString(sum[:]), now.UnixMilli(), dlr, spec.Name, string(spec.Channel)).Int()
	if err != nil {
		return false, fmt.Errorf("create campaign %s: %w", spec.ID, err)
	}
	if n < 0 {
		return false, fmt.Errorf("create campaign %s: %w; pick another id or remove the id key to get a fresh one", spec.ID, ErrSpecConflict)
	}
	// The index is ordered by creation: a campaign created earlier (this
	// is a re-dispatch) keeps its place, at its own created_at.
	at := now.UnixMilli()
	if n == 0 {
		if at, err = s.rdb.HGet(ctx, campaignKey(spec.ID), "created_at").Int64(); err != nil {
			return false, fmt.Errorf("read campaign %s: %w", spec.ID, err)
		}
	}
	if err := s.rdb.ZAddNX(ctx, indexKey, redis.Z{Score: float64(at), Member: spec.ID}).Err(); err != nil {
		return false, fmt.Errorf("index campaign %s: %w", spec.ID, err)
	}
	return n == 1, nil
}

// Spec returns the stored spec of a campaign.
func (s *Store) Spec(ctx context.Context, id string) (campaigns.Spec, error) {
	js, err := s.rdb.HGet(ctx, campaignKey(id), "spec").Result()
	if errors.Is(err, redis.Nil) {
		return campaigns.Spec{}, fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return campaigns.Spec{}, err
	}
	var spec campaigns.Spec
	return spec, json.Unmarshal([]byte(js), &spec)
}

// AddBatch adds a batch's n recipients to the campaign total, once per batch
// however often it is called; maxRow is the batch's highest row.
func (s *Store) AddBatch(ctx context.Context, id string, seq, n, maxRow int) (bool, error) {
	r, err := addBatchScript.Run(ctx, s.rdb, []string{campaignKey(id), batchesKey(id)}, seq, n, maxRow).Int()
	if err != nil {
		return false, fmt.Errorf("record batch %d of %s: %w", seq, id, err)
	}
	return r == 1, nil
}

// HasBatch reports whether a batch was recorded by AddBatch.
func (s *Store) HasBatch(ctx context.Context, id string, seq int) (bool, error) {
	return s.rdb.HExists(ctx, batchesKey(id), strconv.Itoa(seq)).Result()
}

// DispatchCounts are a dispatch's tallies: in a Checkpoint, and stored with
// the campaign by FinishDispatch (which keeps all but Valid: the campaign's
// total counts the valid recipients batch by batch).
type DispatchCounts struct {
	Rows, Valid, Invalid, Duplicates, Suppressed int
}

// FinishDispatch marks the campaign fully expanded and records the
// dispatcher's counts.
func (s *Store) FinishDispatch(ctx context.Context, id string, c DispatchCounts) error {
	err := finishDispatchScript.Run(ctx, s.rdb, []string{campaignKey(id)},
		time.Now().UnixMilli(), c.Invalid, c.Duplicates, c.Suppressed, c.Rows).Err()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	}
	return err
}

// ErrTransition is returned for a state change the campaign's state does not
// allow (resume a running campaign, pause a completed one, ...).
var ErrTransition = errors.New("campaign state does not allow this")

func (s *Store) transition(ctx context.Context, id, action, reason string) (campaigns.State, error) {
	res, err := transitionScript.Run(ctx, s.rdb, []string{campaignKey(id)}, action, reason).Slice()
	if err != nil {
		return "", fmt.Errorf("%s campaign %s: %w", action, id, err)
	}
	st, _ := res[0].(string)
	if st == "missing" {
		return "", fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	}
	if n, _ := res[1].(int64); n == 0 {
		return campaigns.State(st), fmt.Errorf("%s campaign %s: it is %s: %w", action, id, st, ErrTransition)
	}
	return campaigns.State(st), nil
}

// Pause stops a dispatching, running or sent campaign fleet-wide: workers
// claim nothing more of it until Resume. reason is shown by status.
func (s *Store) Pause(ctx context.Context, id, reason string) (campaigns.State, error) {
	return s.transition(ctx, id, "pause", reason)
}

// Resume restarts a paused campaign; it goes on to sent or completed at once
// when nothing is left to send. reason replaces the pause's and is shown by
// status.
func (s *Store) Resume(ctx context.Context, id, reason string) (campaigns.State, error) {
	return s.transition(ctx, id, "resume", reason)
}

// Cancel stops a campaign for good: recipients not yet sent are skipped as
// their tasks come through, and a sent campaign awaits its delivery reports
// no more (reports read after it still count).
func (s *Store) Cancel(ctx context.Context, id, reason string) (campaigns.State, error) {
	return s.transition(ctx, id, "cancel", reason)
}

// Progress reads a campaign's state and counters.
func (s *Store) Progress(ctx context.Context, id string) (campaigns.Progress, error) {
	m, err := s.rdb.HGetAll(ctx, campaignKey(id)).Result()
	if err != nil {
		return campaigns.Progress{}, fmt.Errorf("read campaign %s: %w", id, err)
	}
	if len(m) == 0 {
		return campaigns.Progress{}, fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	}
	n := func(k string) int64 { v, _ := strconv.ParseInt(m[k], 10, 64); return v }
	p := campaigns.Progress{
		ID: id, Name: m["name"], Channel: campaigns.Channel(m["channel"]), State: campaigns.State(m["state"]), Reason: m["reason"],
		Total: n("total"), Sent: n("sent"), Failed: n("failed"), Delivered: n("delivered"),
		Undelivered: n("undelivered"), Read: n("read"), DLRExpired: n("dlr_expired"), Unknown: n("unknown"),
		Skipped: n("skipped"), Invalid: n("invalid"), Duplicates: n("duplicates"),
		Suppressed: n("suppressed"), Batches: n("batches"), Dispatched: m["dispatched"] == "1",
		CreatedAt: time.UnixMilli(n("created_at")).UTC(),
	}
	p.Pending = p.Total - p.Done()
	p.OptedOut = n("opted_out")
	p.Suppressed += p.OptedOut // opted out while running: suppressed as well as skipped
	p.NextOpening = nextOpening(m, p, time.Now())
	sessionProgress(m, &p)
	if f := n("finished_at"); f > 0 {
		t := time.UnixMilli(f).UTC()
		p.FinishedAt = &t
	}
	if f := n("sent_at"); f > 0 {
		t := time.UnixMilli(f).UTC()
		p.SentAt = &t
	}
	if p.Failed+p.Unknown > 0 {
		why, err := s.rdb.HGetAll(ctx, whyKey(id)).Result()
		if err != nil {
			return p, fmt.Errorf("read failure reasons of %s: %w", id, err)
		}
		p.FailureReasons = make(map[string]int64, len(why))
		for k, v := range why {
			p.FailureReasons[k], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if at := n("redis_loss_at"); at > 0 {
		t := time.UnixMilli(at).UTC()
		p.RedisLossAt, p.RedisLosses = &t, n("redis_losses")
	}
	if m["dlr"] == "1" {
		p.AwaitingDLR = p.Sent - p.Delivered - p.Undelivered - p.DLRExpired
	}
	p.Retries = n("retries")
	if p.Channel == campaigns.ChannelWhatsAppCampaign {
		orc, err := s.OneRouteCampaigns(ctx, id)
		if err != nil {
			return p, err
		}
		for _, c := range orc {
			p.OneRouteCampaignIDs = append(p.OneRouteCampaignIDs, c.ID)
		}
	}
	if st := n("started_at"); st > 0 {
		t := time.UnixMilli(st).UTC()
		p.StartedAt = &t
		end := time.Now()
		if u := n("settled_at"); p.Pending == 0 && u > 0 {
			end = time.UnixMilli(u) // the last send, not the last delivery report
		} else if p.FinishedAt != nil {
			end = *p.FinishedAt
		}
		paused := time.Duration(n("paused_ms")) * time.Millisecond
		if at := n("paused_at"); at > 0 && p.State == campaigns.StatePaused {
			paused += end.Sub(time.UnixMilli(at)) // the pause under way
		}
		if secs := (end.Sub(t) - paused).Seconds(); secs >= 1 {
			p.Rate = float64(p.Done()) / secs
			if p.Rate > 0 && p.Pending > 0 && !p.Final() {
				eta := ETA(p.Pending, p.Rate, specLimit(m["spec"]))
				p.ETA = &eta
			}
		}
	}
	return p, nil
}

// ETA is the seconds pending recipients take at rate per second, bounded by
// limit, the campaign's steady rate limit (0: none): never faster than the
// limit lets them go.
func ETA(pending int64, rate, limit float64) float64 {
	if limit > 0 && (rate <= 0 || rate > limit) {
		rate = limit
	}
	if rate <= 0 {
		return 0
	}
	return float64(pending) / rate
}

// specLimit is the steady rate limit a stored spec sets, 0 when none.
func specLimit(js string) float64 {
	var spec struct {
		Rate *campaigns.Rate `json:"rate"`
	}
	if json.Unmarshal([]byte(js), &spec) != nil || spec.Rate == nil {
		return 0
	}
	return spec.Rate.Steady()
}

// List returns campaign ids, newest first by creation (a re-dispatch keeps
// a campaign's place), at most limit (0: all).
func (s *Store) List(ctx context.Context, limit int) ([]string, error) {
	stop := int64(-1)
	if limit > 0 {
		stop = int64(limit - 1)
	}
	return s.rdb.ZRevRange(ctx, indexKey, 0, stop).Result()
}
