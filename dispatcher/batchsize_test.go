package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
)

// A campaign with no rate limit whose batches go out as several requests
// gets tasks of config.DefaultUnlimitedBatchSize: per-message campaigns
// whole, batched ones in calls of config.DefaultBatchSize. Everything else
// keeps config.DefaultBatchSize, and a batch size the spec or the operator
// sets always wins, as the size of a task and of its call.
func TestBatchSizeFor(t *testing.T) {
	t.Parallel()
	const big, small = config.DefaultUnlimitedBatchSize, config.DefaultBatchSize
	limited := &campaigns.Rate{PerSecond: 100}
	for _, tc := range []struct {
		name          string
		spec          campaigns.Spec
		o             Options
		personal      bool
		size, request int
	}{
		{"personalised sms", campaigns.Spec{Channel: campaigns.ChannelSMS}, Options{}, true, big, 0},
		{"shared sms: calls of 50", campaigns.Spec{Channel: campaigns.ChannelSMS}, Options{}, false, big, small},
		{"personalised email: bodies ride in the task, kept at 50", campaigns.Spec{Channel: campaigns.ChannelEmail}, Options{}, true, small, 0},
		{"shared email: calls of 50", campaigns.Spec{Channel: campaigns.ChannelEmail}, Options{}, false, big, small},
		{"push", campaigns.Spec{Channel: campaigns.ChannelPush}, Options{}, false, big, 0},
		{"whatsapp template: calls of 50", campaigns.Spec{Channel: campaigns.ChannelWhatsAppTemplate}, Options{}, true, big, small},
		{"whatsapp session: mixed, not split", campaigns.Spec{Channel: campaigns.ChannelWhatsAppSession}, Options{}, true, small, 0},
		{"whatsapp campaign: one per call, not split", campaigns.Spec{Channel: campaigns.ChannelWhatsAppCampaign}, Options{}, true, small, 0},
		{"spec rate", campaigns.Spec{Channel: campaigns.ChannelSMS, Rate: limited}, Options{}, true, small, 0},
		{"spec rate, whatsapp", campaigns.Spec{Channel: campaigns.ChannelWhatsAppTemplate, Rate: limited}, Options{}, true, small, 0},
		{"operator rate", campaigns.Spec{Channel: campaigns.ChannelSMS}, Options{Rate: campaigns.Rate{PerDay: 10000}}, true, small, 0},
		{"a burst alone limits nothing", campaigns.Spec{Channel: campaigns.ChannelSMS, Rate: &campaigns.Rate{Burst: 5}}, Options{}, true, big, 0},
		{"operator's size", campaigns.Spec{Channel: campaigns.ChannelWhatsAppTemplate}, Options{BatchSize: 100}, true, 100, 0},
		{"spec's size wins", campaigns.Spec{Channel: campaigns.ChannelSMS, BatchSize: 7}, Options{BatchSize: 50}, true, 7, 0},
	} {
		if size, request := batchSizeFor(tc.spec, tc.o, tc.personal); size != tc.size || request != tc.request {
			t.Errorf("%s: tasks of %d, calls of %d; want %d and %d", tc.name, size, request, tc.size, tc.request)
		}
	}
}

// The dispatcher applies it: 450 personalised SMS make tasks of 200, 200
// and 50; the same list with one text for all makes the same tasks, each
// sent in calls of 50; with a batch_size, tasks and calls are that size.
func TestDispatchPerMessageBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var csv strings.Builder
	csv.WriteString("phone,name\n")
	for i := range 450 {
		fmt.Fprintf(&csv, "0803%07d,N%d\n", i, i)
	}
	for _, tc := range []struct {
		id, spec string
		sizes    []int
		request  int
	}{
		{"personal", `message: "Hi {{.name}}"`, []int{200, 200, 50}, 0},
		{"shared", `message: "Hi all"`, []int{200, 200, 50}, 50},
		{"sized", "message: \"Hi all\"\nbatch_size: 150", []int{150, 150, 150}, 0},
	} {
		spec := b.spec(t, tc.id, "channel: sms\nchannel_id: c\n"+tc.spec+"\n", csv.String())
		res, err := b.dispatch(t, context.Background(), spec, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		for _, bt := range b.tasks(t, spec) {
			sizes = append(sizes, len(bt.Items))
			if bt.Request != tc.request {
				t.Errorf("%s: batch %d sent in calls of %d; want %d", tc.id, bt.Seq, bt.Request, tc.request)
			}
		}
		if fmt.Sprint(sizes) != fmt.Sprint(tc.sizes) || res.Batches != len(tc.sizes) {
			t.Errorf("%s: tasks of %v (%d batches); want %v", tc.id, sizes, res.Batches, tc.sizes)
		}
	}
}
