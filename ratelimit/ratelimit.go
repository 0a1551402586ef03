// Package ratelimit paces sends per sender (a provider endpoint and a
// channel id or from number) across every worker process. The Redis limiter
// is shared by all workers; the in-memory twin behaves the same for tests.
//
//	lim := ratelimit.NewRedis(rdb)
//	err := ratelimit.Wait(ctx, lim, "sms:"+channelID, ratelimit.Limit{PerSecond: 200}, 50, 2*time.Second)
//	var te *ratelimit.ThrottledError // a long wait: reschedule the task, it is not a failure
//
// A Limit has up to three levels, all checked and taken together: a request
// is allowed only when every level has room, and a denial at one level takes
// nothing from the others.
//
//   - PerSecond is a GCRA (generic cell rate algorithm, the leaky bucket
//     redis_rate uses): one permit every 1/PerSecond seconds, and up to Burst
//     at once after an idle spell. In any one-second window at most
//     PerSecond + Burst go out.
//   - PerMinute and PerDay are caps over a moving window: never more than the
//     cap within any 60 seconds or any 24 hours. A permit counts for one
//     window plus at most one bucket (250 ms for the minute, 5 minutes for
//     the day), so the caps are kept strictly and the sustained rate under a
//     cap is 99.6% (minute) and 99.7% (day) of it.
//
// Reserve is Allow that may take permits in the near future: it takes n
// permits that conform at most ahead from now and says in Result.Delay when,
// so a caller that sends at that time (Schedule returns it) paces its
// requests at arrival, not only at the limiter. The caps count reserved
// permits in the bucket of their time. Allow is Reserve with ahead 0.
//
// A request for more than Burst permits at once is allowed only when the
// per-second bucket is full (every earlier permit paid back); it then owes
// n/PerSecond seconds, so the long-run rate holds and nothing
// deadlocks, but that one request exceeds the burst. Keep requests at or
// below the burst to keep the one-second bound. A request for more than
// PerMinute or PerDay permits can never be allowed: Allow returns a
// *CapacityError.
//
// Block stops a sender for every worker, as after a provider 429 with
// Retry-After; Allow answers with the remaining block as RetryAfter. A block
// holds even for a sender with no limits (Limit.Unlimited), so Allow and
// Reserve always ask the limiter.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limit is a set of limits for one sender. Zero fields are no limit.
type Limit struct {
	PerSecond int
	PerMinute int
	PerDay    int
	// Burst is how many may go at once above the steady per-second rate;
	// default the per-second limit. It applies to the per-second level only.
	Burst int
}

// Unlimited reports whether no limit is set.
func (l Limit) Unlimited() bool { return l.PerSecond <= 0 && l.PerMinute <= 0 && l.PerDay <= 0 }

// burst is the effective burst: Burst, or PerSecond when Burst is not set.
func (l Limit) burst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return l.PerSecond
}

// Result is a limiter's answer.
type Result struct {
	// Allowed is how many of the n asked for may go now (0 or n).
	Allowed int
	// RetryAfter is how long until the request could be allowed; 0 when allowed.
	RetryAfter time.Duration
	// Delay is, when allowed by Reserve, how long from now until the permits
	// conform: the request goes on the wire then, not before. Always 0 from
	// Allow.
	Delay time.Duration
}

// Limiter hands out send permits.
type Limiter interface {
	// Allow takes n permits for key now, or none and says how long to wait.
	Allow(ctx context.Context, key string, l Limit, n int) (Result, error)
	// Reserve takes n permits for key that conform at most ahead from now,
	// and says in Result.Delay when; or none and says how long to wait.
	// Reserve with ahead 0 is Allow.
	Reserve(ctx context.Context, key string, l Limit, n int, ahead time.Duration) (Result, error)
	// Block stops key for d for every caller, as after a provider 429 with
	// Retry-After.
	Block(ctx context.Context, key string, d time.Duration) error
}

// Bucket widths of the moving-window caps. A permit counts against a cap
// until its bucket has left the window entirely.
const (
	minuteWindow = time.Minute
	minuteBucket = 250 * time.Millisecond
	dayWindow    = 24 * time.Hour
	dayBucket    = 5 * time.Minute
)

// ErrorRetryIn is how long Wait tells the caller to wait when the limiter
// cannot answer (Redis down or timing out): the limiter fails closed, so
// nothing is sent without a permit, and the task comes back like a
// throttled one instead of burning a retry.
const ErrorRetryIn = 5 * time.Second

// ThrottledError says a sender is over its limit for longer than a handler
// should wait; the task should be rescheduled after RetryIn without counting
// as a failure.
type ThrottledError struct {
	Key     string
	RetryIn time.Duration
	// Err is the limiter's error when the limiter could not answer and Wait
	// failed closed; nil for an ordinary throttle.
	Err error
}

func (e *ThrottledError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("rate limited: %s: limiter unavailable (%v), retry in %s", e.Key, e.Err, e.RetryIn.Round(time.Millisecond))
	}
	return fmt.Sprintf("rate limited: %s over its limit, retry in %s", e.Key, e.RetryIn.Round(time.Millisecond))
}

// Unwrap returns the limiter's error, if any.
func (e *ThrottledError) Unwrap() error { return e.Err }

// CapacityError says a request asks for more permits at once than a cap
// allows in a whole window, so no wait can satisfy it; send smaller batches
// or raise the cap.
type CapacityError struct {
	Key string
	// N is the permits asked for.
	N int
	// Cap names the level ("per_minute" or "per_day") and Limit its value.
	Cap   string
	Limit int
}

func (e *CapacityError) Error() string {
	return fmt.Sprintf("rate limit %s: %d messages at once exceed the %s limit of %d", e.Key, e.N, e.Cap, e.Limit)
}

// checkCapacity returns a *CapacityError when n can never fit under l.
func checkCapacity(key string, l Limit, n int) error {
	if l.PerMinute > 0 && n > l.PerMinute {
		return &CapacityError{Key: key, N: n, Cap: "per_minute", Limit: l.PerMinute}
	}
	if l.PerDay > 0 && n > l.PerDay {
		return &CapacityError{Key: key, N: n, Cap: "per_day", Limit: l.PerDay}
	}
	return nil
}

// Schedule reserves n permits for key and returns when they conform: the
// caller sends at that time, not before, so its request reaches the
// provider paced (see Reserve). Keep n at or below the burst. It retries a
// denial while the total wait stays within maxWait and ends before ctx's
// deadline, and fails like Wait otherwise.
func Schedule(ctx context.Context, lim Limiter, key string, l Limit, n int, maxWait time.Duration) (time.Time, error) {
	if lim == nil || n <= 0 {
		return time.Now(), nil
	}
	giveUp := time.Now().Add(maxWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(giveUp) {
		giveUp = dl
	}
	for {
		res, err := lim.Reserve(ctx, key, l, n, max(time.Until(giveUp), 0))
		if err != nil {
			if ctx.Err() != nil {
				return time.Time{}, ctx.Err()
			}
			if ce := (*CapacityError)(nil); errors.As(err, &ce) {
				return time.Time{}, err
			}
			return time.Time{}, &ThrottledError{Key: key, RetryIn: ErrorRetryIn, Err: err}
		}
		if res.Allowed >= n {
			// Measured from the reply, after the limiter's clock read
			// it: the trip only makes the send later, never earlier.
			return time.Now().Add(res.Delay), nil
		}
		if res.RetryAfter > maxWait || time.Now().Add(res.RetryAfter).After(giveUp) {
			return time.Time{}, &ThrottledError{Key: key, RetryIn: res.RetryAfter}
		}
		if err := sleep(ctx, res.RetryAfter); err != nil {
			return time.Time{}, err
		}
	}
}

// sleep waits d or until ctx is done, whichever comes first, and returns
// ctx's error in the second case.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Wait takes n permits for key, waiting inside the call while the total wait
// stays within maxWait and ends before ctx's deadline. A longer wait returns a
// *ThrottledError at once. Waits honour ctx.
//
// When the limiter fails (Redis unreachable), Wait fails closed: it returns a
// *ThrottledError with RetryIn ErrorRetryIn that wraps the cause, so nothing
// is sent unpaced and the task is rescheduled without counting a failure. A
// *CapacityError (a batch larger than a cap) is returned as is: no wait helps.
func Wait(ctx context.Context, lim Limiter, key string, l Limit, n int, maxWait time.Duration) error {
	if lim == nil || n <= 0 {
		return nil
	}
	// maxWait bounds the whole wait, not each sleep, so a handler never sits
	// on claimed recipients for long.
	giveUp := time.Now().Add(maxWait)
	for {
		res, err := lim.Allow(ctx, key, l, n)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if ce := (*CapacityError)(nil); errors.As(err, &ce) {
				return err
			}
			return &ThrottledError{Key: key, RetryIn: ErrorRetryIn, Err: err}
		}
		if res.Allowed >= n {
			return nil
		}
		if res.RetryAfter > maxWait || time.Now().Add(res.RetryAfter).After(giveUp) {
			return &ThrottledError{Key: key, RetryIn: res.RetryAfter}
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < res.RetryAfter {
			// The wait would outlive the task: give the task back now
			// instead of failing it with a deadline.
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
