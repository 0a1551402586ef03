package main

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

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
