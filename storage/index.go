package storage

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
)

// The provider-id index maps the OneRoute message id of every accepted SMS
// still awaiting its delivery report to its row, so that a list of the
// channel's messages (the delivery-report sweep) or a pushed report (the
// webhook receiver) finds its recipient without one request per message.
//
// Record writes it in the same script that records the row accepted, and
// removes the entry when the report is recorded final, so the index holds
// exactly the awaited rows. It is split into indexBuckets hashes by a hash
// of the id: about 100 entries each for a 100,000-message campaign, which
// keeps them in Redis' compact listpack encoding (~32 bytes per entry). Each
// bucket expires IndexTTL after its last write.

// indexBuckets is how many hashes a campaign's index is split into. Never
// change it: existing indexes are found by it.
const indexBuckets = 1024

// DefaultIndexTTL is how long an index entry is kept by default:
// config.DefaultDLRMaxAge (24h) plus an hour.
const DefaultIndexTTL = 25 * time.Hour

// indexBucket is the bucket of a provider message id.
func indexBucket(pid string) int {
	h := fnv.New32a()
	h.Write([]byte(pid))
	return int(h.Sum32() % indexBuckets)
}

func indexKeyN(id string, n int) string       { return "fanout:{" + id + "}:x:" + strconv.Itoa(n) }
func indexKeyOf(id string, pid string) string { return indexKeyN(id, indexBucket(pid)) }
func sweepKey(id string) string               { return "fanout:{" + id + "}:sw" }

// RowsOf returns the row of each provider message id among the campaign's
// awaited SMS, or -1 for an id it does not await (another campaign's, one
// already settled, or one whose entry expired). One script, one round trip.
func (s *Store) RowsOf(ctx context.Context, id string, pids []string) ([]int, error) {
	if len(pids) == 0 {
		return []int{}, nil
	}
	keys := newKeyList()
	args := make([]any, 0, 2*len(pids))
	for _, p := range pids {
		args = append(args, keys.index(indexKeyOf(id, p)), p)
	}
	res, err := rowsOfScript.Run(ctx, s.rdb, keys.keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("look up %d provider ids of %s: %w", len(pids), id, err)
	}
	if len(res) != len(pids) {
		return nil, fmt.Errorf("look up %d provider ids of %s: %d answers", len(pids), id, len(res))
	}
	out := make([]int, len(res))
	for i, r := range res {
		out[i] = int(r)
	}
	return out, nil
}

// Awaiting is one accepted SMS whose delivery report is awaited.
type Awaiting struct {
	ID  string // the provider message id
	Row int
}

// Awaited lists every entry of the campaign's provider-id index: the SMS
// accepted and not yet settled by a delivery report (rows accepted before
// the index existed are not in it). One round trip of indexBuckets reads.
func (s *Store) Awaited(ctx context.Context, id string) ([]Awaiting, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, indexBuckets)
	for n := range cmds {
		cmds[n] = pipe.HGetAll(ctx, indexKeyN(id, n))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("list awaited reports of %s: %w", id, err)
	}
	var out []Awaiting
	for _, c := range cmds {
		for pid, v := range c.Val() {
			if row, err := strconv.Atoi(v); err == nil {
				out = append(out, Awaiting{ID: pid, Row: row})
			}
		}
	}
	return out, nil
}

// Report is a final delivery report of one SMS, by provider message id.
type Report struct {
	ID    string // the provider message id
	State byte   // LedgerDelivered, LedgerUndelivered or LedgerDLRExpired
}

// Settle records final delivery reports given by provider message id (a
// webhook, a list of the channel's messages): ids the campaign does not
// await are ignored. It returns how many rows were settled. Two round trips:
// RowsOf, then Record in ModeDLR, so counters stay exact.
func (s *Store) Settle(ctx context.Context, id string, reports []Report) (int, error) {
	pids := make([]string, len(reports))
	for i, r := range reports {
		pids[i] = r.ID
	}
	rows, err := s.RowsOf(ctx, id, pids)
	if err != nil {
		return 0, err
	}
	var outs []campaigns.Outcome
	for i, r := range reports {
		if rows[i] >= 0 {
			outs = append(outs, campaigns.Outcome{Row: rows[i], State: r.State, Value: r.ID})
		}
	}
	return s.Record(ctx, id, ModeDLR, "", outs)
}

// DLRStatus is what the delivery-report sweep needs of a campaign, read in
// one command.
type DLRStatus struct {
	State campaigns.State
	// Awaiting counts accepted SMS without a final report (0 for campaigns
	// without delivery reports).
	Awaiting int64
	// Sending: the campaign is dispatching or running and some recipients
	// are not settled yet, so more may be accepted.
	Sending bool
	// StartedAt and SettledAt are the first and last send outcomes (Redis'
	// clock); UpdatedAt the last change of any counter. Zero when absent.
	StartedAt, SettledAt, UpdatedAt time.Time
}

// DLRStatus reads a campaign's delivery-report status.
func (s *Store) DLRStatus(ctx context.Context, id string) (DLRStatus, error) {
	f := []string{"state", "dlr", "dispatched", "total", "sent", "failed", "unknown", "skipped",
		"delivered", "undelivered", "dlr_expired", "started_at", "settled_at", "updated_at"}
	v, err := s.rdb.HMGet(ctx, campaignKey(id), f...).Result()
	if err != nil {
		return DLRStatus{}, fmt.Errorf("read campaign %s: %w", id, err)
	}
	str := func(i int) string { x, _ := v[i].(string); return x }
	n := func(i int) int64 { x, _ := strconv.ParseInt(str(i), 10, 64); return x }
	ms := func(i int) time.Time {
		if x := n(i); x > 0 {
			return time.UnixMilli(x)
		}
		return time.Time{}
	}
	if str(0) == "" {
		return DLRStatus{}, fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	}
	st := DLRStatus{State: campaigns.State(str(0)), StartedAt: ms(11), SettledAt: ms(12), UpdatedAt: ms(13)}
	if str(1) == "1" {
		st.Awaiting = n(4) - n(8) - n(9) - n(10)
	}
	settled := n(4) + n(5) + n(6) + n(7)
	active := st.State == campaigns.StateDispatching || st.State == campaigns.StateRunning
	st.Sending = active && (str(2) != "1" || settled < n(3))
	return st, nil
}

// Sweep is the delivery-report sweep's memory of a campaign between passes
// (fanout:{id}:sw), kept by the worker's dlr:sweep handler.
type Sweep struct {
	// Floor is how far back (OneRoute's createdAt, Unix ms) the next pass
	// reads the channel's messages; 0 means from the campaign's first send.
	Floor int64
	// FreshAt is when (Unix ms, the worker's clock) the last pass that read
	// the channel's messages back to the floor started.
	FreshAt int64
	// Latency is the delivery-report latency (ms) the sweep has learnt:
	// the 99th percentile of delivered_time - createdAt of final reports.
	Latency int64
	// Idle counts passes in a row that settled little, for backoff.
	Idle int
	// StraggleAt is when the next pass over pending messages is due (Unix
	// ms; 0: once stragglers can exist).
	StraggleAt int64
	// Straggles counts those passes, for backoff.
	Straggles int
	// PageSize is the page size the sweep uses once OneRoute refused a
	// larger one (0: the worker's default).
	PageSize int
	// Passes, Pages and Lookups count the sweep's passes, list requests and
	// per-message report requests over the campaign.
	Passes, Pages, Lookups int64
}

// LoadSweep reads a campaign's sweep memory (zero when none).
func (s *Store) LoadSweep(ctx context.Context, id string) (Sweep, error) {
	m, err := s.rdb.HGetAll(ctx, sweepKey(id)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Sweep{}, fmt.Errorf("read sweep of %s: %w", id, err)
	}
	n := func(k string) int64 { x, _ := strconv.ParseInt(m[k], 10, 64); return x }
	return Sweep{Floor: n("floor"), FreshAt: n("fresh_at"), Latency: n("latency_ms"), Idle: int(n("idle")), StraggleAt: n("straggle_at"), Straggles: int(n("straggles")), PageSize: int(n("page_size")),
		Passes: n("passes"), Pages: n("pages"), Lookups: n("lookups")}, nil
}

// SaveSweep writes a campaign's sweep memory; it expires with the index.
func (s *Store) SaveSweep(ctx context.Context, id string, w Sweep) error {
	k := sweepKey(id)
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, k, "floor", w.Floor, "fresh_at", w.FreshAt, "latency_ms", w.Latency, "idle", w.Idle, "straggle_at", w.StraggleAt, "straggles", w.Straggles, "page_size", w.PageSize,
		"passes", w.Passes, "pages", w.Pages, "lookups", w.Lookups)
	pipe.PExpire(ctx, k, s.indexTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("save sweep of %s: %w", id, err)
	}
	return nil
}
