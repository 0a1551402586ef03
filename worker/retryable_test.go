package worker

import (
	"context"
	"fmt"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
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

// dropEnqueuer loses every task it is given (a crash between the reset and
// the enqueue, or a task deleted at once).
type dropEnqueuer struct{}

func (dropEnqueuer) EnqueueContext(context.Context, *asynq.Task, ...asynq.Option) (*asynq.TaskInfo, error) {
	return &asynq.TaskInfo{}, nil
}

// A retry round whose tasks never reached asynq does not strand the
// campaign: the round's copies were saved before the rows were reset, so
// the auditor re-creates the task (<cid>:b0x1) from its copy, holding
// exactly the retried rows.
func TestLostRetryTaskIsRestoredByTheAuditor(t *testing.T) {
	t.Parallel()
	b := setupAudit(t)
	const id = "lostretry"
	bts := b.campaign(t, id, 1)
	rows := make([]int, 0, 10)
	var outs []campaigns.Outcome
	for _, it := range bts[0].Items {
		rows = append(rows, it.Row)
		why := "Invalid number"
		if it.Row%2 == 0 {
			why = "gave up after 8 attempts: HTTP 500: Internal server error"
		}
		outs = append(outs, campaigns.Outcome{Row: it.Row, State: storage.LedgerFailed, Value: why})
	}
	saveRetrySource(b.ctx, b.store, bts[0], outs)
	if _, err := b.store.Claim(b.ctx, id, "T", rows, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Record(b.ctx, id, storage.ModeSend, "T", outs); err != nil {
		t.Fatal(err)
	}
	if err := b.aud.Audit(b.ctx); err != nil { // completed: copies dropped
		t.Fatal(err)
	}
	res, err := RetryFailed(b.ctx, b.store, KeepCopies(dropEnqueuer{}, b.store), id, RetryOptions{})
	if err != nil || res.Retried != 5 || res.Batches != 1 || res.State != campaigns.StateRunning {
		t.Fatalf("RetryFailed = %+v, %v; want 5 retried in 1 task, running", res, err)
	}
	if err := b.aud.Audit(b.ctx); err != nil {
		t.Fatal(err)
	}
	info, err := b.insp.GetTaskInfo(tasks.QueueSMS, id+":b0x1")
	if err != nil {
		t.Fatalf("the lost retry task was not re-created: %v", err)
	}
	var got campaigns.Batch
	if err := tasks.Decode(info.Payload, &got); err != nil {
		t.Fatal(err)
	}
	var gotRows []int
	for _, it := range got.Items {
		gotRows = append(gotRows, it.Row)
	}
	if got.Retry != 1 || fmt.Sprint(gotRows) != "[2 4 6 8 10]" || got.Items[0].To == "" {
		t.Errorf("re-created task: retry %d rows %v items %+v, want retry 1 rows [2 4 6 8 10] with addresses", got.Retry, gotRows, got.Items)
	}
}
