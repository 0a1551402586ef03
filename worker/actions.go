package worker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/ratelimit"
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
	j := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
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

// IsFailure tells asynq which errors count as failures.
func IsFailure(err error) bool {
	var nf *notFailure
	var te *ratelimit.ThrottledError
	return !errors.As(err, &nf) && !errors.As(err, &te)
}

// RetryDelay is asynq's RetryDelayFunc: waits for not-a-failure errors, and
// exponential backoff with jitter for the rest.
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
		return Backoff(n+1, base)
	}
}

// skip marks a task that can never succeed (a payload that does not decode,
// a campaign that is gone): asynq archives it without retrying. The cause
// stays matchable with errors.Is and errors.As, as does asynq.SkipRetry.
func skip(err error) error {
	return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
}
