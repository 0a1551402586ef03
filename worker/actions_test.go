package worker

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// A task that can never succeed is archived without retries, and its error
// keeps the cause: asynq.SkipRetry and the cause both match.
func TestSkipKeepsTheCause(t *testing.T) {
	t.Parallel()
	b := setup(t)
	gone := &campaigns.Batch{Campaign: "gone", Channel: campaigns.ChannelSMS, Items: []campaigns.Item{{Row: 1, To: "+2348030000001"}}}
	var syntax *json.SyntaxError
	for _, tc := range []struct {
		name  string
		err   error
		cause func(error) bool
	}{
		{"campaign not found", b.run(t, gone), func(err error) bool { return errors.Is(err, storage.ErrNotFound) }},
		{"bad payload", b.mux.ProcessTask(b.ctx, asynq.NewTask(tasks.TypeSMSSend, []byte("{"))), func(err error) bool { return errors.As(err, &syntax) }},
		{"bad poll", b.mux.ProcessTask(b.ctx, asynq.NewTask(tasks.TypeDLRPoll, []byte("{"))), func(err error) bool { return errors.As(err, &syntax) }},
	} {
		if !errors.Is(tc.err, asynq.SkipRetry) {
			t.Errorf("%s: %v does not skip retries", tc.name, tc.err)
		}
		if !tc.cause(tc.err) {
			t.Errorf("%s: %v lost its cause", tc.name, tc.err)
		}
	}
}
