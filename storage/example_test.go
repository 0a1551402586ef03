package storage_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// Send one campaign's recipients the way a worker does: claim them for this
// attempt, stamp them just before the request, and record the outcome.
func Example() {
	mr := miniredis.NewMiniRedis() // your Redis; an in-memory one here
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	store := storage.New(rdb)
	spec := campaigns.Spec{ID: "welcome", Channel: campaigns.ChannelEmail, ChannelID: "ch", Subject: "Hi", Message: "Hello", Recipients: "r.csv"}
	if _, err := store.Create(ctx, spec); err != nil {
		panic(err)
	}
	rows := []int{1, 2}
	if _, err := store.AddBatch(ctx, spec.ID, 0, len(rows), 2); err != nil {
		panic(err)
	}
	if err := store.FinishDispatch(ctx, spec.ID, storage.DispatchCounts{Rows: 2, Valid: 2}); err != nil {
		panic(err)
	}

	token := storage.NewToken() // one per attempt
	reply, err := store.Claim(ctx, spec.ID, token, rows, time.Minute)
	if err != nil {
		panic(err)
	}
	fmt.Println("claimed:", reply.Results[0].Code == storage.Claimed, reply.Results[1].Code == storage.Claimed)
	if _, err := store.Stamp(ctx, spec.ID, token, rows); err != nil {
		panic(err)
	}
	outs := []campaigns.Outcome{
		{Row: 1, State: storage.LedgerAccepted, Value: "msg-1"},
		{Row: 2, State: storage.LedgerFailed, Value: "invalid address"},
	}
	for range 2 { // a retried call changes nothing
		n, _ := store.Record(ctx, spec.ID, storage.ModeSend, token, outs)
		fmt.Println("recorded:", n)
	}
	p, _ := store.Progress(ctx, spec.ID)
	fmt.Println(p.State, "sent", p.Sent, "failed", p.Failed, p.FailureReasons)
	// The accepted email's status (a webhook, the Logs API) completes it.
	if _, err := store.Record(ctx, spec.ID, storage.ModeDLR, "", []campaigns.Outcome{{Row: 1, State: storage.LedgerDelivered, Value: "msg-1"}}); err != nil {
		panic(err)
	}
	p, _ = store.Progress(ctx, spec.ID)
	fmt.Println(p.State, "delivered", p.Delivered)
	// Output:
	// claimed: true true
	// recorded: 2
	// recorded: 0
	// sent sent 1 failed 1 map[invalid address:1]
	// completed delivered 1
}
