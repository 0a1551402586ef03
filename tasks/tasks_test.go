package tasks_test

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/tasks"
)

// Every task id starts with its campaign, so logs and the dashboard can
// name the campaign of any task.
func TestCampaignOf(t *testing.T) {
	t.Parallel()
	b := &campaigns.Batch{Campaign: "spring-1", Seq: 12}
	follow := &campaigns.Batch{Campaign: "c-1", Seq: 3, Attempt: 1, Items: []campaigns.Item{{Row: 7}}}
	poll := &tasks.DLRPoll{Campaign: "c-1", Key: "b3r1", Attempt: 2}
	for id, want := range map[string]string{
		tasks.BatchID(b): "spring-1", tasks.BatchID(follow): "c-1", poll.ID(): "c-1",
		tasks.Expand{Campaign: "c-2", Gen: 4}.ID(): "c-2", "plain": "plain", "": "",
	} {
		if got := tasks.CampaignOf(id); got != want {
			t.Errorf("CampaignOf(%q) = %q, want %q", id, got, want)
		}
	}
}

// Task ids are deterministic: the same batch has the same id, and two
// follow-ups of one batch with other rows never share one.
func TestIDsAreDeterministic(t *testing.T) {
	t.Parallel()
	a := &campaigns.Batch{Campaign: "c", Seq: 3, Attempt: 1, Items: []campaigns.Item{{Row: 1}, {Row: 2}}}
	b := &campaigns.Batch{Campaign: "c", Seq: 3, Attempt: 1, Items: []campaigns.Item{{Row: 1}, {Row: 3}}}
	if tasks.BatchID(a) != tasks.BatchID(a) || tasks.BatchID(a) == tasks.BatchID(b) { //nolint:staticcheck // SA4000: twice on purpose, the id is deterministic
		t.Fatalf("ids %s and %s", tasks.BatchID(a), tasks.BatchID(b))
	}
	if got := tasks.BatchID(&campaigns.Batch{Campaign: "c", Seq: 3}); got != "c:b3" {
		t.Errorf("dispatched batch id %q, want c:b3", got)
	}
}

// Enqueueing a task twice is one task and no error: a producer that
// crashed after enqueueing can simply enqueue again.
func TestEnqueueTwiceIsOneTask(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: mr.Addr()})
	t.Cleanup(func() { client.Close() })
	b := &campaigns.Batch{Campaign: "c", Seq: 1, Channel: campaigns.ChannelEmail, Items: []campaigns.Item{{Row: 1, To: "a@b.c"}}}
	for range 2 {
		if err := tasks.Enqueue(context.Background(), client, tasks.Send(b, tasks.Options{})); err != nil {
			t.Fatal(err)
		}
	}
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: mr.Addr()})
	t.Cleanup(func() { insp.Close() })
	pending, err := insp.ListPendingTasks(tasks.QueueEmail)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != "c:b1" || pending[0].Type != tasks.TypeEmailSend || pending[0].MaxRetry != tasks.MaxRetry {
		t.Fatalf("pending %+v", pending)
	}
	var got campaigns.Batch
	if err := tasks.Decode(pending[0].Payload, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*b, got); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
}
