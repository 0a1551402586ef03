package worker_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/worker"
)

// The webhook receiver hands every verified event to OptOuts.Inbound; a
// customer's STOP puts their number in the WhatsApp opt-out set, which the
// dispatcher and the workers read.
func ExampleOptOuts_Inbound() {
	mr := miniredis.NewMiniRedis() // your Redis; an in-memory one here
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	store := storage.New(rdb)
	optouts, err := worker.NewOptOuts(store, nil, "NG") // the default stop words
	if err != nil {
		panic(err)
	}
	body := `{"event":"newMessage","message":{"sender":{"authUser":false},"content":"Stop!","conversation_id":"c1"},
		"conversation":{"id":"c1","subject":null,"customer":{"name":"Ada"},"customer_id":"cust-2348031234567"}}`
	ev, err := oneroute.ParseEvent([]byte(body))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := optouts.Inbound(ctx, ev); err != nil {
		panic(err) // worker.ErrNoSender: acknowledge the webhook and log instead
	}
	found, _ := store.OptedOut(ctx, storage.OptOutWhatsApp, []string{"+2348031234567"})
	fmt.Println(found[0].Reason)
	// Output: stop-word:STOP
}
