package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
)

// A campaign sent one request per message with no rate limit gets tasks of
// config.DefaultPerMessageBatchSize; everything else keeps
// config.DefaultBatchSize, and a batch size the spec or the operator sets
// always wins.
func TestBatchSizeFor(t *testing.T) {
	t.Parallel()
	limited := &campaigns.Rate{PerSecond: 100}
	for _, tc := range []struct {
		name     string
		spec     campaigns.Spec
		o        Options
		personal bool
		want     int
	}{
		{"personalised sms", campaigns.Spec{Channel: campaigns.ChannelSMS}, Options{}, true, config.DefaultPerMessageBatchSize},
		{"shared sms: one call per batch", campaigns.Spec{Channel: campaigns.ChannelSMS}, Options{}, false, config.DefaultBatchSize},
		{"personalised email", campaigns.Spec{Channel: campaigns.ChannelEmail}, Options{}, true, config.DefaultPerMessageBatchSize},
		{"shared email", campaigns.Spec{Channel: campaigns.ChannelEmail}, Options{}, false, config.DefaultBatchSize},
		{"push", campaigns.Spec{Channel: campaigns.ChannelPush}, Options{}, false, config.DefaultPerMessageBatchSize},
		{"whatsapp template", campaigns.Spec{Channel: campaigns.ChannelWhatsAppTemplate}, Options{}, true, config.DefaultBatchSize},
		{"whatsapp session", campaigns.Spec{Channel: campaigns.ChannelWhatsAppSession}, Options{}, true, config.DefaultBatchSize},
		{"spec rate", campaigns.Spec{Channel: campaigns.ChannelSMS, Rate: limited}, Options{}, true, config.DefaultBatchSize},
		{"operator rate", campaigns.Spec{Channel: campaigns.ChannelSMS}, Options{Rate: campaigns.Rate{PerDay: 10000}}, true, config.DefaultBatchSize},
		{"a burst alone limits nothing", campaigns.Spec{Channel: campaigns.ChannelSMS, Rate: &campaigns.Rate{Burst: 5}}, Options{}, true, config.DefaultPerMessageBatchSize},
		{"operator's size", campaigns.Spec{Channel: campaigns.ChannelSMS}, Options{BatchSize: 50}, true, 50},
		{"spec's size wins", campaigns.Spec{Channel: campaigns.ChannelSMS, BatchSize: 7}, Options{BatchSize: 50}, true, 7},
	} {
		if got := batchSizeFor(tc.spec, tc.o, tc.personal); got != tc.want {
			t.Errorf("%s: batch size %d; want %d", tc.name, got, tc.want)
		}
	}
}

// The dispatcher applies it: 450 personalised SMS make tasks of 200, 200
// and 50; the same list with one text for all makes tasks of 50.
func TestDispatchPerMessageBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var csv strings.Builder
	csv.WriteString("phone,name\n")
	for i := range 450 {
		fmt.Fprintf(&csv, "0803%07d,N%d\n", i, i)
	}
	for _, tc := range []struct {
		id, message string
		want        []int
	}{
		{"personal", "Hi {{.name}}", []int{200, 200, 50}},
		{"shared", "Hi all", []int{50, 50, 50, 50, 50, 50, 50, 50, 50}},
	} {
		spec := b.spec(t, tc.id, "channel: sms\nchannel_id: c\nmessage: \""+tc.message+"\"\n", csv.String())
		res, err := b.dispatch(t, context.Background(), spec, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, bt := range b.tasks(t, spec) {
			got = append(got, len(bt.Items))
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || res.Batches != len(tc.want) {
			t.Errorf("%s: tasks of %v (%d batches); want %v", tc.id, got, res.Batches, tc.want)
		}
	}
}
