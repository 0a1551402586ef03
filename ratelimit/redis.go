package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every key the Redis limiter writes.
const DefaultPrefix = "fanout:rl:"

var (
	//go:embed allow.lua
	allowLua    string
	allowScript = redis.NewScript(allowLua)

	//go:embed block.lua
	blockLua    string
	blockScript = redis.NewScript(blockLua)
)

// Redis is the limiter shared by every worker process through one Redis.
// Each sender has up to four keys, all under one hash tag so the script that
// reads them runs on one Redis Cluster slot:
//
//	fanout:rl:{sms:42}:s   per-second GCRA state (a string)
//	fanout:rl:{sms:42}:m   per-minute window (a hash of buckets)
//	fanout:rl:{sms:42}:d   per-day window (a hash of buckets)
//	fanout:rl:{sms:42}:b   blocked until (a string)
//
// Every key expires once it no longer matters. The clock is Redis TIME, so
// the workers' clocks need not agree.
type Redis struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ Limiter = (*Redis)(nil)

// Option configures a Redis limiter.
type Option func(*Redis)

// WithPrefix replaces DefaultPrefix, e.g. to keep two deployments apart in
// one Redis.
func WithPrefix(p string) Option { return func(r *Redis) { r.prefix = p } }

// NewRedis returns a limiter that keeps its state in rdb.
func NewRedis(rdb redis.UniversalClient, opts ...Option) *Redis {
	r := &Redis{rdb: rdb, prefix: DefaultPrefix}
	for _, o := range opts {
		o(r)
	}
	return r
}

// keys returns the per-second, per-minute, per-day and block keys of key.
func (r *Redis) keys(key string) []string {
	base := r.prefix + "{" + key + "}:"
	return []string{base + "s", base + "m", base + "d", base + "b"}
}

// Allow takes n permits for key at every level of l, or none and says how
// long until they could be taken. It returns a *CapacityError when n exceeds
// a per-minute or per-day cap.
func (r *Redis) Allow(ctx context.Context, key string, l Limit, n int) (Result, error) {
	return r.Reserve(ctx, key, l, n, 0)
}

// Reserve takes n permits for key that conform within ahead from now, or
// none and says how long until they could be taken. It returns a
// *CapacityError when n exceeds a per-minute or per-day cap.
func (r *Redis) Reserve(ctx context.Context, key string, l Limit, n int, ahead time.Duration) (Result, error) {
	if n <= 0 {
		return Result{}, nil
	}
	if err := checkCapacity(key, l, n); err != nil {
		return Result{}, err
	}
	args := []any{n, max(l.PerSecond, 0), max(l.burst(), 1),
		max(l.PerMinute, 0), minuteBucket.Microseconds(),
		max(l.PerDay, 0), dayBucket.Microseconds(),
		int64(minuteWindow / minuteBucket), int64(dayWindow / dayBucket), max(ahead.Microseconds(), 0)}
	vals, err := allowScript.Run(ctx, r.rdb, r.keys(key), args...).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("allow %s: %w", key, err)
	}
	if len(vals) != 2 {
		return Result{}, fmt.Errorf("allow %s: unexpected reply %v", key, vals)
	}
	if vals[0] == 1 {
		return Result{Allowed: n, Delay: time.Duration(vals[1]) * time.Microsecond}, nil
	}
	return Result{RetryAfter: time.Duration(vals[1]) * time.Microsecond}, nil
}

// Block stops key for d for every caller; a longer block already in place is
// kept. Allow answers with the remaining block as RetryAfter.
func (r *Redis) Block(ctx context.Context, key string, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	us := max(d.Microseconds(), 1)
	if err := blockScript.Run(ctx, r.rdb, r.keys(key)[3:], strconv.FormatInt(us, 10)).Err(); err != nil {
		return fmt.Errorf("block %s for %s: %w", key, d, err)
	}
	return nil
}
