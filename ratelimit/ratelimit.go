// Package ratelimit paces sends per sender (a provider endpoint and a
// channel id or from number) across every worker process. The Redis limiter
// is shared by all workers; the in-memory twin behaves the same for tests.
//
//	lim := ratelimit.NewRedis(rdb)
//	err := ratelimit.Wait(ctx, lim, "sms:"+channelID, ratelimit.Limit{PerSecond: 200}, 50, 2*time.Second)
//	var te *ratelimit.ThrottledError // a long wait: reschedule the task, it is not a failure
package ratelimit

import (
	"context"
	"fmt"
	"time"
)

// Limit is a set of limits for one sender. Zero fields are no limit.
type Limit struct {
	PerSecond int
	PerMinute int
	PerDay    int
	// Burst is how many may go at once above the steady per-second rate;
	// default the per-second limit.
	Burst int
}

// Unlimited reports whether no limit is set.
func (l Limit) Unlimited() bool { return l.PerSecond <= 0 && l.PerMinute <= 0 && l.PerDay <= 0 }

// Result is a limiter's answer.
type Result struct {
	// Allowed is how many of the n asked for may go now (0 or n).
	Allowed int
	// RetryAfter is how long until the request could be allowed; 0 when allowed.
	RetryAfter time.Duration
}

// Limiter hands out send permits.
type Limiter interface {
	// Allow takes n permits for key now, or none and says how long to wait.
	Allow(ctx context.Context, key string, l Limit, n int) (Result, error)
	// Block stops key for d for every caller, as after a provider 429 with
	// Retry-After.
	Block(ctx context.Context, key string, d time.Duration) error
}

// ThrottledError says a sender is over its limit for longer than a handler
// should wait; the task should be rescheduled after RetryIn without counting
// as a failure.
type ThrottledError struct {
	Key     string
	RetryIn time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("rate limited: %s over its limit, retry in %s", e.Key, e.RetryIn.Round(time.Millisecond))
}

// Wait takes n permits for key, waiting inside the call while the wait is at
// most maxWait. A longer wait returns a *ThrottledError at once. Waits honour
// ctx.
func Wait(ctx context.Context, lim Limiter, key string, l Limit, n int, maxWait time.Duration) error {
	if lim == nil || l.Unlimited() || n <= 0 {
		return nil
	}
	for {
		res, err := lim.Allow(ctx, key, l, n)
		if err != nil {
			return fmt.Errorf("rate limit %s: %w", key, err)
		}
		if res.Allowed >= n {
			return nil
		}
		if res.RetryAfter > maxWait {
			return &ThrottledError{Key: key, RetryIn: res.RetryAfter}
		}
		t := time.NewTimer(max(res.RetryAfter, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
