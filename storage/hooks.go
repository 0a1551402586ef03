package storage

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
)

// Webhook events (the webhooks package). The receiver answers OneRoute 2xx
// only once an event is durably recorded, so OneRoute's retries are safe;
// the applier then feeds the recorded events to the ledger. Keys:
//
//	fanout:{hooks}:d:<digest> string  an event already received (digest:
//	                                  hex SHA-256 of its raw body). Set with
//	                                  the event's stream entry; expires
//	                                  HookDedupeTTL after.
//	fanout:{hooks}:s          stream  the events received and not yet
//	                                  applied (field b: the raw body);
//	                                  consumer group "apply". Entries are
//	                                  deleted once applied (AckHooks).
//	fanout:{hooks}:live       string  set while events arrive (expires
//	                                  HookLiveTTL after the last one).
//	fanout:{hooks}:later      zset    events whose message is not known yet
//	                                  (a report racing its send's record):
//	                                  "<first seen ms>:<body>" scored by when
//	                                  to try again (ms).
//	fanout:{<id>}:hk          string  set while delivery reports of campaign
//	                                  id arrive by webhook (expires HookLiveTTL,
//	                                  or the applier's LiveFor, after the last
//	                                  one); the dlr:sweep reads no report then.
//
// The {hooks} keys share one hash tag, so the receiver's script and the
// applier's transactions run on one Redis Cluster slot.

const (
	hookStreamKey = "fanout:{hooks}:s"
	hookLiveKey   = "fanout:{hooks}:live"
	hookLaterKey  = "fanout:{hooks}:later"
	// HookGroup is the stream's consumer group.
	HookGroup = "apply"
)

func hookDedupeKey(digest string) string { return "fanout:{hooks}:d:" + digest }
func hookedKey(id string) string         { return "fanout:{" + id + "}:hk" }

// HookDedupeTTL is how long a received event is remembered, so that a
// replay of it within that time is recognised.
const HookDedupeTTL = 7 * 24 * time.Hour

// HookLiveTTL is how long after the last event webhooks count as flowing.
const HookLiveTTL = 30 * time.Second

var (
	//go:embed hooks.lua
	hooksLua    string
	hooksScript = redis.NewScript(hooksLua)
)

// HookEvent is a received webhook: the identity it is deduplicated by (the
// hex SHA-256 of its raw body, or an event id) and the raw body.
type HookEvent struct {
	Digest string
	Body   []byte
}

// RecordHooks durably records webhook events in one script (one round trip
// for the whole group): each one not received within HookDedupeTTL is
// appended to the event stream, and reported true; a replay writes nothing
// and is reported false.
func (s *Store) RecordHooks(ctx context.Context, evs []HookEvent) ([]bool, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(evs)+2)
	args := make([]any, 0, len(evs)+2)
	keys = append(keys, hookStreamKey, hookLiveKey)
	args = append(args, HookDedupeTTL.Milliseconds(), HookLiveTTL.Milliseconds())
	for _, e := range evs {
		keys = append(keys, hookDedupeKey(e.Digest))
		args = append(args, e.Body)
	}
	res, err := hooksScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("record %d webhook events: %w", len(evs), err)
	}
	if len(res) != len(evs) {
		return nil, fmt.Errorf("record %d webhook events: %d answers", len(evs), len(res))
	}
	out := make([]bool, len(res))
	for i, r := range res {
		out[i] = r == 1
	}
	return out, nil
}

// HooksFlowing reports whether webhook events arrived within HookLiveTTL.
func (s *Store) HooksFlowing(ctx context.Context) (bool, error) {
	n, err := s.rdb.Exists(ctx, hookLiveKey).Result()
	if err != nil {
		return false, fmt.Errorf("read webhook liveness: %w", err)
	}
	return n > 0, nil
}

// StreamEvent is one recorded webhook event read from the stream.
type StreamEvent struct {
	ID   string // the stream entry id, for AckHooks
	Body []byte
}

// EnsureHookGroup creates the stream's consumer group (and the stream) when
// missing. The group starts at the stream's beginning, so events recorded
// before any applier ran are applied too.
func (s *Store) EnsureHookGroup(ctx context.Context) error {
	err := s.rdb.XGroupCreateMkStream(ctx, hookStreamKey, HookGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create webhook consumer group: %w", err)
	}
	return nil
}

// ReadHooks returns up to count events for consumer: first, when idle > 0,
// those another consumer (or this one, before a restart) took more than
// idle ago without acknowledging them, then new ones, waiting up to block
// for some (0: do not wait).
func (s *Store) ReadHooks(ctx context.Context, consumer string, count int, block, idle time.Duration) ([]StreamEvent, error) {
	if idle > 0 {
		claimed, _, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: hookStreamKey, Group: HookGroup, Consumer: consumer, MinIdle: idle, Start: "0-0", Count: int64(count),
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("claim idle webhook events: %w", err)
		}
		if len(claimed) > 0 {
			return streamEvents(claimed), nil
		}
	}
	if block <= 0 {
		block = -1 // go-redis: no BLOCK argument
	}
	res, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: HookGroup, Consumer: consumer, Streams: []string{hookStreamKey, ">"}, Count: int64(count), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read webhook events: %w", err)
	}
	var out []StreamEvent
	for _, st := range res {
		out = append(out, streamEvents(st.Messages)...)
	}
	return out, nil
}

func streamEvents(msgs []redis.XMessage) []StreamEvent {
	out := make([]StreamEvent, 0, len(msgs))
	for _, m := range msgs {
		b, _ := m.Values["b"].(string)
		out = append(out, StreamEvent{ID: m.ID, Body: []byte(b)})
	}
	return out
}

// Deferred is an event put off until its message is known.
type Deferred struct {
	// FirstSeen is when it was first deferred; Due when to try it again.
	FirstSeen, Due time.Time
	Body           []byte
}

func (d Deferred) member() string {
	return strconv.FormatInt(d.FirstSeen.UnixMilli(), 10) + ":" + string(d.Body)
}

// AckHooks settles applied events in one transaction: later are put off
// (fanout:{hooks}:later), and ids are acknowledged and deleted from the
// stream.
func (s *Store) AckHooks(ctx context.Context, ids []string, later []Deferred) error {
	if len(ids) == 0 && len(later) == 0 {
		return nil
	}
	pipe := s.rdb.TxPipeline()
	for _, d := range later {
		pipe.ZAdd(ctx, hookLaterKey, redis.Z{Score: float64(d.Due.UnixMilli()), Member: d.member()})
	}
	if len(ids) > 0 {
		pipe.XAck(ctx, hookStreamKey, HookGroup, ids...)
		pipe.XDel(ctx, hookStreamKey, ids...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("acknowledge %d webhook events: %w", len(ids), err)
	}
	return nil
}

// DueHooks returns up to n put-off events due at now.
func (s *Store) DueHooks(ctx context.Context, now time.Time, n int) ([]Deferred, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, hookLaterKey, &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: int64(n),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read put-off webhook events: %w", err)
	}
	out := make([]Deferred, 0, len(zs))
	for _, z := range zs {
		m, _ := z.Member.(string)
		ms, body, ok := strings.Cut(m, ":")
		first, err := strconv.ParseInt(ms, 10, 64)
		if !ok || err != nil {
			continue
		}
		out = append(out, Deferred{FirstSeen: time.UnixMilli(first), Due: time.UnixMilli(int64(z.Score)), Body: []byte(body)})
	}
	return out, nil
}

// SettleDeferred removes put-off events that are done (applied or given up)
// and puts again off those in again (same FirstSeen, new Due), in one
// transaction.
func (s *Store) SettleDeferred(ctx context.Context, done, again []Deferred) error {
	if len(done) == 0 && len(again) == 0 {
		return nil
	}
	pipe := s.rdb.TxPipeline()
	for _, d := range done {
		pipe.ZRem(ctx, hookLaterKey, d.member())
	}
	for _, d := range again {
		pipe.ZAdd(ctx, hookLaterKey, redis.Z{Score: float64(d.Due.UnixMilli()), Member: d.member()})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("settle put-off webhook events: %w", err)
	}
	return nil
}

// MarkHooked records that delivery reports of the campaigns ids arrived by
// webhook just now; HookedReports reads it for ttl (0: HookLiveTTL).
func (s *Store) MarkHooked(ctx context.Context, ids []string, ttl time.Duration) error {
	if len(ids) == 0 {
		return nil
	}
	if ttl <= 0 {
		ttl = HookLiveTTL
	}
	// The value is the deadline too, so the liveness ends on time on a
	// Redis whose keys do not expire on their own clock (miniredis, the
	// embedded Redis of fanout run).
	until := strconv.FormatInt(time.Now().Add(ttl).UnixMilli(), 10)
	pipe := s.rdb.Pipeline()
	for _, id := range ids {
		pipe.Set(ctx, hookedKey(id), until, ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("mark webhook reports of %d campaigns: %w", len(ids), err)
	}
	return nil
}

// HookedReports reports whether delivery reports of campaign id arrived by
// webhook lately (MarkHooked's ttl): webhooks bring its reports, and the
// delivery-report sweep need not read them.
func (s *Store) HookedReports(ctx context.Context, id string) (bool, error) {
	v, err := s.rdb.Get(ctx, hookedKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read webhook liveness of %s: %w", id, err)
	}
	until, perr := strconv.ParseInt(v, 10, 64)
	return perr != nil || time.Now().UnixMilli() < until, nil
}

// ReportCampaigns lists the campaigns created since then that track
// delivery reports and are not completed: those a delivery report pushed by
// provider message id may belong to. One round trip for the ids, one
// pipelined for their states.
func (s *Store) ReportCampaigns(ctx context.Context, since time.Time) ([]string, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, indexKey, &redis.ZRangeBy{Min: strconv.FormatInt(since.UnixMilli(), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("list recent campaigns: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, campaignKey(id), "dlr", "state")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read recent campaigns: %w", err)
	}
	var out []string
	for i, c := range cmds {
		v := c.Val()
		if len(v) != 2 {
			continue
		}
		dlr, _ := v[0].(string)
		state, _ := v[1].(string)
		if dlr == "1" && state != string(campaigns.StateCompleted) {
			out = append(out, ids[i])
		}
	}
	return out, nil
}
