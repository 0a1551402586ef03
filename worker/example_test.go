package worker_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
	"github.com/fanoutdev/fanout/worker"
)

// Run a worker that sends one SMS batch and follows it to its delivery
// reports.
func Example() {
	mr := miniredis.NewMiniRedis() // your Redis; an in-memory one here
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	sb := sandbox.New(sandbox.Options{DLRDelay: -1}) // OneRoute; its sandbox here
	defer sb.Close()
	api := httptest.NewServer(sb)
	defer api.Close()
	client, _ := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: sandbox.KeyPrefix + "demo"})
	ctx := context.Background()
	store := storage.New(rdb)
	enq := asynq.NewClientFromRedisClient(rdb)

	// What the dispatcher does: a campaign, and a batch task for its rows.
	spec := campaigns.Spec{ID: "hello", Channel: campaigns.ChannelSMS, ChannelID: sandbox.SMSChannelID, Message: "Hello", Recipients: "r.csv"}
	if _, err := store.Create(ctx, spec); err != nil {
		panic(err)
	}
	batch := &campaigns.Batch{Campaign: spec.ID, Channel: spec.Channel, ChannelID: spec.ChannelID, Shared: &campaigns.Content{Text: "Hello"},
		Items: []campaigns.Item{{Row: 1, To: "+2348031234567"}, {Row: 2, To: "+2348031234568"}}}
	if _, err := store.AddBatch(ctx, spec.ID, 0, len(batch.Items), len(batch.Items)); err != nil {
		panic(err)
	}
	if err := store.FinishDispatch(ctx, spec.ID, storage.DispatchCounts{Rows: 2, Valid: 2}); err != nil {
		panic(err)
	}
	if err := tasks.Enqueue(ctx, enq, tasks.Send(batch, tasks.Options{})); err != nil {
		panic(err)
	}

	w := worker.NewServer(rdb, worker.Deps{Store: store, Provider: client, Enqueuer: enq, Logger: zerolog.Nop()},
		worker.Options{PollInterval: 20 * time.Millisecond, DLRInterval: 50 * time.Millisecond})
	if err := w.Start(); err != nil {
		panic(err)
	}
	p, _ := store.Progress(ctx, spec.ID)
	for deadline := time.Now().Add(10 * time.Second); p.Delivered < 2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		p, _ = store.Progress(ctx, spec.ID)
	}
	w.Stop() // or w.Run(ctx), which stops when ctx is cancelled
	fmt.Println(p.State, "sent", p.Sent, "delivered", p.Delivered)
	// Output: completed sent 2 delivered 2
}
