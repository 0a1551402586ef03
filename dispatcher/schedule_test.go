package dispatcher

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

const lagosWindow = "schedule:\n  window: {start: \"08:00\", end: \"20:00\", timezone: Africa/Lagos}\n"

// Each recipient carries its zone from schedule.timezone_column only when
// it differs from the window's; an empty or unknown zone falls back to the
// window's and is counted. Every batch carries the window.
func TestDispatchZonesFromColumn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.spec(t, "tzcol", "channel: sms\nchannel_id: c\nmessage: hi\n"+lagosWindow+"  timezone_column: tz\n",
		"phone,tz\n08031234567,Africa/Lagos\n08031234568,Asia/Kolkata\n08031234569,\n08031234570,Mars/Base\n")
	res, err := b.dispatch(t, context.Background(), spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var zones []string
	for _, bt := range b.tasks(t, spec) {
		if bt.Window == nil || bt.Window.Timezone != "Africa/Lagos" {
			t.Fatalf("batch %d window %+v", bt.Seq, bt.Window)
		}
		for _, it := range bt.Items {
			zones = append(zones, it.TZ)
		}
	}
	if diff := cmp.Diff([]string{"", "Asia/Kolkata", "", ""}, zones); diff != "" {
		t.Errorf("zones (-want +got):\n%s", diff)
	}
	if res.TimezoneDefaulted != 2 {
		t.Errorf("timezone_defaulted %d, want 2", res.TimezoneDefaulted)
	}
}

// A timezone_column the file lacks is refused before anything is
// enqueued, naming the spec line.
func TestDispatchZoneColumnMissing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.spec(t, "tzmiss", "channel: sms\nchannel_id: c\nmessage: hi\n"+lagosWindow+"  timezone_column: zone\n", "phone\n08031234567\n")
	_, err := b.dispatch(t, context.Background(), spec, Options{})
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), `campaign.yaml:8: schedule.timezone_column "zone" is not a column`) {
		t.Fatalf("got %v", err)
	}
	if _, err := b.store.Progress(context.Background(), spec.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the campaign was created: %v", err)
	}
}

// Batches of a campaign with a future start_at are scheduled for it, not
// pending; zones come from the phone numbers' countries.
func TestDispatchHoldsBatchesUntilStartAt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := time.Now().Add(2 * time.Hour).Truncate(time.Second).UTC()
	spec := b.spec(t, "later", "channel: sms\nchannel_id: c\nmessage: hi\nbatch_size: 2\n"+lagosWindow+
		"  timezone_from_phone: true\n  start_at: "+start.Format(time.RFC3339)+"\n",
		"phone\n08031234567\n+254712345678\n+919812345678\n")
	res, err := b.dispatch(t, context.Background(), spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.StartsAt == nil || !res.StartsAt.Equal(start) {
		t.Errorf("starts_at %v, want %s", res.StartsAt, start)
	}
	if pending := b.tasks(t, spec); len(pending) != 0 {
		t.Fatalf("%d batches pending before start_at", len(pending))
	}
	infos, err := b.insp.ListScheduledTasks(tasks.QueueSMS, asynq.PageSize(10))
	if err != nil {
		t.Fatal(err)
	}
	var zones []string
	for _, ti := range infos {
		if d := ti.NextProcessAt.Sub(start); d < -5*time.Second || d > 5*time.Second {
			t.Errorf("task %s due %s, want %s", ti.ID, ti.NextProcessAt, start)
		}
		var bt campaigns.Batch
		if err := tasks.Decode(ti.Payload, &bt); err != nil {
			t.Fatal(err)
		}
		if bt.StartAt != start.Unix() {
			t.Errorf("batch %d start %d, want %d", bt.Seq, bt.StartAt, start.Unix())
		}
		for _, it := range bt.Items {
			zones = append(zones, it.To+"="+it.TZ)
		}
	}
	if len(infos) != 2 {
		t.Fatalf("%d scheduled tasks, want 2", len(infos))
	}
	got := strings.Join(zones, " ")
	for _, want := range []string{"+2348031234567=", "+254712345678=Africa/Nairobi", "+919812345678=Asia/"} {
		if !strings.Contains(got, want) {
			t.Errorf("zones %q lack %q", got, want)
		}
	}
}
