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
)

// Redis data loss. appendfsync everysec loses up to about a second of
// acknowledged writes when the host crashes, and an asynchronous replica
// loses its replication lag when it is promoted. Ledger entries written in
// that window roll back: a recipient sent just before the loss looks
// pending (or claimed, never stamped) again, and would be sent twice.
//
// fanout cannot prevent the loss, but it can notice it: every Redis
// instance has a run_id (INFO server) that changes when it restarts, and a
// promoted replica has another. The epoch key remembers the run_id the
// fleet last saw; LossAt compares them at the start of every batch attempt,
// and the first attempt to see a new run_id records a loss (loss_at) and
// marks the campaigns that were not final (redis_loss_at, shown by status).
// Workers then verify with the provider, before sending, every recipient
// of those campaigns for a while (worker/reconcile.go). A restart that lost
// nothing (a clean restart, a SIGKILL with the AOF in the page cache) looks
// the same: it costs lookups, never a duplicate.

const epochKey = "fanout:epoch"

var (
	//go:embed epoch.lua
	epochLua    string
	epochScript = redis.NewScript(epochLua)
)

// LossAt reports when Redis was last seen to restart or fail over (and so
// may have lost its last writes), if campaign id was created before then;
// zero otherwise. The first caller to see a new run_id records the loss and
// marks every campaign not yet final (see MarkedLoss). A Redis that does
// not report a run_id (miniredis) is never seen to restart.
func (s *Store) LossAt(ctx context.Context, id string) (time.Time, error) {
	pipe := s.rdb.Pipeline()
	info := pipe.Info(ctx, "server")
	epoch := pipe.HMGet(ctx, epochKey, "run_id", "loss_at")
	created := pipe.HGet(ctx, campaignKey(id), "created_at")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && info.Err() == nil {
		return time.Time{}, fmt.Errorf("check Redis epoch: %w", err)
	}
	if info.Err() != nil {
		if Unavailable(info.Err()) {
			return time.Time{}, fmt.Errorf("check Redis epoch: %w", info.Err())
		}
		return time.Time{}, nil // INFO not supported: cannot tell
	}
	runID := infoField(info.Val(), "run_id")
	if runID == "" {
		return time.Time{}, nil
	}
	v := epoch.Val()
	seen, _ := v[0].(string)
	lossMs, _ := v[1].(string)
	switch {
	case seen == "":
		// First sight of this Redis (or it lost everything, campaigns
		// included): remember it.
		if err := s.rdb.HSetNX(ctx, epochKey, "run_id", runID).Err(); err != nil {
			return time.Time{}, fmt.Errorf("write Redis epoch: %w", err)
		}
	case seen != runID:
		now := time.Now()
		won, err := epochScript.Run(ctx, s.rdb, []string{epochKey}, seen, runID, now.UnixMilli()).Int()
		if err != nil {
			return time.Time{}, fmt.Errorf("record Redis restart: %w", err)
		}
		if won == 1 {
			if err := s.markLoss(ctx, now); err != nil {
				return time.Time{}, err
			}
		}
		lossMs, err = s.rdb.HGet(ctx, epochKey, "loss_at").Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return time.Time{}, fmt.Errorf("read Redis epoch: %w", err)
		}
	}
	loss, _ := strconv.ParseInt(lossMs, 10, 64)
	createdMs, _ := strconv.ParseInt(created.Val(), 10, 64)
	if loss == 0 || createdMs >= loss {
		return time.Time{}, nil
	}
	return time.UnixMilli(loss), nil
}

// markLoss records on every campaign that has batch copies (is not final)
// that Redis may have lost its writes at t: status shows it, and its
// counters may hold recipients sent twice or counted from a rolled-back
// ledger until verification settles them.
func (s *Store) markLoss(ctx context.Context, t time.Time) error {
	ids, err := s.Audited(ctx)
	if err != nil {
		return err
	}
	pipe := s.rdb.Pipeline()
	for _, id := range ids {
		pipe.HSet(ctx, campaignKey(id), "redis_loss_at", t.UnixMilli())
		pipe.HIncrBy(ctx, campaignKey(id), "redis_losses", 1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("mark campaigns after a Redis restart: %w", err)
	}
	return nil
}

// RedisLoss is what a campaign knows of Redis losses while it ran.
type RedisLoss struct {
	// At is the last time Redis was seen to restart or fail over while the
	// campaign was not final (zero: never).
	At time.Time
	// Count is how many times.
	Count int
}

// MarkedLoss reads a campaign's Redis losses (zero when none).
func (s *Store) MarkedLoss(ctx context.Context, id string) (RedisLoss, error) {
	v, err := s.rdb.HMGet(ctx, campaignKey(id), "redis_loss_at", "redis_losses").Result()
	if err != nil {
		return RedisLoss{}, fmt.Errorf("read campaign %s: %w", id, err)
	}
	at, _ := v[0].(string)
	n, _ := v[1].(string)
	ms, _ := strconv.ParseInt(at, 10, 64)
	var out RedisLoss
	if ms > 0 {
		out.At = time.UnixMilli(ms).UTC()
	}
	out.Count, _ = strconv.Atoi(n)
	return out, nil
}

// infoField reads one "name:value" line of an INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// Durability reports what the Redis at hand can promise about its writes:
// its version, its AOF fsync policy and whether WAITAOF (Redis >= 7.2,
// which waits for the local AOF fsync) exists. Worker start-up logs it.
type Durability struct {
	Version     string
	AOF         bool
	AppendFsync string // "always", "everysec", "no", or "" when unknown
	WaitAOF     bool
}

// Durability inspects the server. Fields it cannot read stay empty.
func (s *Store) Durability(ctx context.Context) (Durability, error) {
	var d Durability
	info, err := s.rdb.Info(ctx, "server", "persistence").Result()
	if err != nil {
		return d, fmt.Errorf("read Redis info: %w", err)
	}
	d.Version = infoField(info, "redis_version")
	d.AOF = infoField(info, "aof_enabled") == "1"
	if cfg, err := s.rdb.ConfigGet(ctx, "appendfsync").Result(); err == nil {
		d.AppendFsync = cfg["appendfsync"]
	}
	major, minor := 0, 0
	if parts := strings.SplitN(d.Version, ".", 3); len(parts) >= 2 {
		major, _ = strconv.Atoi(parts[0])
		minor, _ = strconv.Atoi(parts[1])
	}
	d.WaitAOF = major > 7 || (major == 7 && minor >= 2)
	return d, nil
}
