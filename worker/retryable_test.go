package worker

import (
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
)

// The reasons the send path records are classified by Retryable as the
// error table says: a temporary failure that ran out of attempts is
// retryable, a permanent refusal is not. This ties batch.go's wording to
// retry-failed.
func TestRetryableFollowsTheErrorTable(t *testing.T) {
	t.Parallel()
	a := &attempt{s: &batchSender{opts: Options{MaxAttempts: 2}}, b: &campaigns.Batch{Failures: 1}}
	it := campaigns.Item{Row: 1}
	for _, tc := range []struct {
		name string
		o    outcome
		want bool
	}{
		{"temporary past its attempts", outcome{action: Decide(apiErr(500)), reason: "HTTP 500: Internal server error"}, true},
		{"permanent refusal", outcome{action: Decide(apiErr(400)), reason: "HTTP 400: \"recipients\" is invalid"}, false},
		{"per-recipient refusal", outcome{action: FailPermanently, reason: "Invalid number"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := a.outcome(it, tc.o, &plan{})
			if !ok || out.State != storage.LedgerFailed {
				t.Fatalf("outcome = %+v %v, want failed", out, ok)
			}
			// The ledger keeps 59 bytes of the reason.
			kept := out.Value[:min(len(out.Value), 59)]
			if got := Retryable(kept); got != tc.want {
				t.Errorf("Retryable(%q) = %v, want %v", kept, got, tc.want)
			}
		})
	}
	if !Retryable("abandoned after 101 task errors: boom") {
		t.Error("a recipient of a task asynq gave up on is not retryable")
	}
}

// Reasons named with --reason are retried, matching the start of the
// recorded reason, or the whole of a long reason the ledger cut.
func TestRetryOptionsWanted(t *testing.T) {
	t.Parallel()
	o := RetryOptions{Reasons: []string{"Invalid", "HTTP 400: a very long reason that the ledger cut at fifty-nine bytes exactly"}}
	for reason, want := range map[string]bool{
		"Invalid number":   true,
		"Blacklisted":      false,
		"gave up after 3 ": true,
		"HTTP 400: a very long reason that the ledger cut at fifty-n": true,
		"HTTP 400: other": false,
	} {
		if got := o.wanted(reason); got != want {
			t.Errorf("wanted(%q) = %v, want %v", reason, got, want)
		}
	}
}

func apiErr(status int) error {
	return &oneroute.APIError{Op: "send sms", Status: status, Message: "x"}
}
