package tasks_test

import (
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/tasks"
)

// A retry round's batches never take the task id of a first-run batch or
// of another round, follow-ups included; first-run ids are unchanged.
func TestRetryBatchIDsNeverCollide(t *testing.T) {
	t.Parallel()
	items := []campaigns.Item{{Row: 1}, {Row: 2}}
	ids := map[string]bool{}
	for _, b := range []campaigns.Batch{
		{Campaign: "c", Seq: 1}, {Campaign: "c", Seq: 1, Attempt: 1, Items: items},
		{Campaign: "c", Seq: 1, Retry: 1}, {Campaign: "c", Seq: 1, Retry: 1, Attempt: 1, Items: items},
		{Campaign: "c", Seq: 1, Retry: 2}, {Campaign: "c", Seq: 11}, {Campaign: "c", Seq: 11, Retry: 1},
	} {
		id := tasks.BatchID(&b)
		if ids[id] {
			t.Errorf("task id %s taken twice", id)
		}
		ids[id] = true
	}
	if got := tasks.BatchID(&campaigns.Batch{Campaign: "c", Seq: 12}); got != "c:b12" {
		t.Errorf("first-run id = %s, want c:b12", got)
	}
	if got := tasks.BatchID(&campaigns.Batch{Campaign: "c", Seq: 12, Retry: 3}); got != "c:b12x3" {
		t.Errorf("retry id = %s, want c:b12x3", got)
	}
	if got := tasks.BatchKey(&campaigns.Batch{Seq: 12, Retry: 3, Attempt: 1, Items: items}); !strings.HasPrefix(got, "b12x3r1-") {
		t.Errorf("retry follow-up key = %s, want b12x3r1-<hash>", got)
	}
}
