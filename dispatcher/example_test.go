package dispatcher_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
)

// Dispatch a campaign from another program: parse a spec, stream its
// recipients from any reader, and enqueue batches for fanout's workers.
func ExampleDispatch() {
	mr := miniredis.NewMiniRedis() // your Redis; an in-memory one here
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	spec, err := campaigns.ParseSpec("welcome.yaml", []byte(`
id: welcome
channel: sms
channel_id: my-sms-channel
message: "Hi {{.name}}"
recipients: "-"
`))
	if err != nil {
		panic(err)
	}
	src, err := recipients.NewSource(strings.NewReader("phone,name\n0803 123 4567,Ada\n+2348031234567,Ada again\n12345,Nobody\n08031234568,Bayo\n"), recipients.SourceOptions{})
	if err != nil {
		panic(err)
	}
	res, err := dispatcher.Dispatch(context.Background(), storage.New(rdb), asynq.NewClientFromRedisClient(rdb), spec, src,
		dispatcher.Options{BatchSize: 50, Reject: func(r dispatcher.Reject) { fmt.Printf("row %d refused: %s\n", r.Row, r.Reason) }})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %d valid, %d invalid, %d duplicates, %d batches\n", res.ID, res.Valid, res.Invalid, res.Duplicates, res.Batches)
	// Output:
	// row 3 refused: invalid address: "12345" is not a valid phone number for region NG
	// welcome: 2 valid, 1 invalid, 1 duplicates, 1 batches
}
