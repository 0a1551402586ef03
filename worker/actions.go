package worker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/ratelimit"
	"github.com/fanoutdev/fanout/storage"
)

// Action is what a handler does about a failed provider call.
type Action int

// Actions, one per error class.
const (
	// Succeed: no error.
	Succeed Action = iota
	// FailPermanently: record the recipients failed with the reason; never
	// retry (asynq.SkipRetry).
	FailPermanently
	// PauseCampaign: the key or the template is refused; every further send
	// would fail too. Release the claims and pause the campaign.
	PauseCampaign
	// Reschedule: throttled; release the claims and run again after
	// Retry-After without counting a failure.
	Reschedule
	// RetryWithBackoff: temporary; release the claims and retry with
	// exponential backoff and jitter, up to MaxAttempts.
	RetryWithBackoff
	// Reconcile: ambiguous; the message may have been accepted. Keep the
	// claim and settle it with a provider lookup before any resend.
	Reconcile
)

var actionNames = [...]string{"succeed", "fail", "pause", "reschedule", "retry", "reconcile"}

// String is the action's name in logs and tests: "succeed", "fail",
// "pause", "reschedule", "retry" or "reconcile".
func (a Action) String() string { return actionNames[a] }

// Decide maps a provider error to an action. It is the one place where the
// client's classification becomes a decision.
func Decide(err error) Action {
	switch oneroute.Classify(err) {
	case oneroute.OK:
		return Succeed
	case oneroute.Unauthorized:
		return PauseCampaign
	case oneroute.Throttled:
		return Reschedule
	case oneroute.Temporary:
		return RetryWithBackoff
	case oneroute.Ambiguous:
		return Reconcile
	default:
		if oneroute.IsTemplateRejected(err) {
			return PauseCampaign
		}
		return FailPermanently
	}
}

// Backoff is the delay before retry n (1-based) of a temporary failure:
// exponential from base, capped at 5 minutes, with ±25% jitter.
func Backoff(n int, base time.Duration) time.Duration {
	if n < 1 {
		n = 1
	}
	d := base << min(n-1, 16)
	if d > 5*time.Minute || d <= 0 {
		d = 5 * time.Minute
	}
	j := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4 //nolint:gosec // G404: retry jitter, not a secret
	return d + j
}

// notFailure is returned for waits that must not burn a retry: throttling,
// a paused campaign, recipients still in flight elsewhere. IsFailure says
// false for it and RetryDelayFunc turns it into the wait.
type notFailure struct {
	reason  string
	retryIn time.Duration
}

func (e *notFailure) Error() string {
	return fmt.Sprintf("%s; again in %s", e.reason, e.retryIn.Round(time.Millisecond))
}

// redisRetry is how long a task waits after Redis could not serve it
// (storage.Unavailable), before jitter: short enough to resume soon after
// Redis is back, long enough not to hammer a Redis that is restarting.
const redisRetry = 5 * time.Second

// IsFailure tells asynq which errors count as failures. Waits (throttling,
// a paused campaign) are not, and neither is Redis being unreachable or
// unable to serve (storage.Unavailable): an outage, however long, must not
// use up a task's retries and end with its recipients abandoned as failed.
// Such a task is given back like a throttle and tries again, sending
// nothing until the ledger answers (fail-closed).
func IsFailure(err error) bool {
	var nf *notFailure
	var te *ratelimit.ThrottledError
	return !errors.As(err, &nf) && !errors.As(err, &te) && !infraError(err)
}

// infraError reports a Redis failure that is not about the task: see
// storage.Unavailable. A provider's transport error is never one, even
// when its cause is a network error too.
func infraError(err error) bool {
	var te *oneroute.TransportError
	var ae *oneroute.APIError
	if errors.As(err, &te) || errors.As(err, &ae) {
		return false
	}
	return storage.Unavailable(err)
}

// RetryDelay is asynq's RetryDelayFunc: waits for not-a-failure errors, a
// bounded wait (redisRetry ±25%) after Redis failed, and exponential
// backoff with jitter for the rest.
func RetryDelay(base time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		var nf *notFailure
		if errors.As(err, &nf) {
			return nf.retryIn
		}
		var te *ratelimit.ThrottledError
		if errors.As(err, &te) {
			return te.RetryIn
		}
		if infraError(err) {
			return Backoff(1, redisRetry)
		}
		return Backoff(n+1, base)
	}
}

// skip marks a task that can never succeed (a payload that does not decode,
// a campaign that is gone): asynq archives it without retrying. The cause
// stays matchable with errors.Is and errors.As, as does asynq.SkipRetry.
func skip(err error) error {
	return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
}
