package main

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/tasks"
)

// config cannot import tasks, so it spells the queue names itself: its
// default weights and the queues it requires must be exactly the queues
// tasks are routed to, or a worker would leave one unserved.
func TestConfigQueuesAreTheTaskQueues(t *testing.T) {
	t.Parallel()
	want := []string{tasks.QueueDLR, tasks.QueueEmail, tasks.QueueSMS, tasks.QueueWhatsApp}
	var weighted []string
	for q := range config.DefaultQueues() {
		weighted = append(weighted, q)
	}
	slices.Sort(weighted)
	if diff := cmp.Diff(want, weighted); diff != "" {
		t.Errorf("config.DefaultQueues() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, slices.Sorted(slices.Values(config.Queues))); diff != "" {
		t.Errorf("config.Queues (-want +got):\n%s", diff)
	}
}

// Help texts print defaults from config's constants; they must read as
// before ("24h", not "24h0m0s").
func TestShortDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{24 * time.Hour, "24h"},
		{5 * time.Minute, "5m"},
		{90 * time.Minute, "1h30m"},
		{3 * time.Second, "3s"},
		{10 * time.Second, "10s"},
		{500 * time.Millisecond, "500ms"},
		{time.Hour + 10*time.Second, "1h0m10s"},
	} {
		if got := shortDuration(tc.in); got != tc.want {
			t.Errorf("shortDuration(%s) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// Every command builds its dispatcher options from the configuration in
// one place: the settings and the default rate all arrive.
func TestDispatchOptions(t *testing.T) {
	t.Parallel()
	cfg := config.Defaults()
	if o := dispatchOptions(cfg); o.BatchSize != 0 {
		t.Errorf("batch size %d with none set; want 0 (by campaign)", o.BatchSize)
	}
	cfg.Dispatch.BatchSize, cfg.Dispatch.BatchSizeSet, cfg.Dispatch.Window = 20, true, 7
	cfg.Worker.MaxAttempts, cfg.Worker.TaskTimeout = 3, time.Minute
	cfg.RateLimit = config.RateLimit{PerSecond: 1, PerMinute: 2, PerDay: 3, Burst: 4}
	o := dispatchOptions(cfg)
	got := []any{o.BatchSize, o.Window, o.MaxAttempts, o.TaskTimeout, o.Rate}
	want := []any{20, 7, 3, time.Minute, campaigns.Rate{PerSecond: 1, PerMinute: 2, PerDay: 3, Burst: 4}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dispatchOptions (-want +got):\n%s", diff)
	}
	if w := workerOptions(cfg); w.RateLimit != o.Rate {
		t.Errorf("workerOptions rate %+v; want %+v", w.RateLimit, o.Rate)
	}
}
