package tasks_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/tasks"
)

// A producer builds a batch's send task and enqueues it; enqueueing the same
// batch again (after a crash, on a re-run) is success, and one task.
func ExampleEnqueue() {
	mr, _ := miniredis.Run()
	defer mr.Close()
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: mr.Addr()})
	defer client.Close()

	b := &campaigns.Batch{Campaign: "spring-sale", Seq: 7, Channel: campaigns.ChannelSMS,
		Items: []campaigns.Item{{Row: 1, To: "+2348031234567"}}}
	t := tasks.Send(b, tasks.Options{Timeout: 5 * time.Minute})
	for range 2 {
		if err := tasks.Enqueue(context.Background(), client, t); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println(t.ID, t.Type(), tasks.Queue(b.Channel), tasks.CampaignOf(t.ID))
	// Output: spring-sale:b7 sms:send sms spring-sale
}
