package metrics

import (
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// QueueInspector is what the queue collector needs of *asynq.Inspector.
type QueueInspector interface {
	Queues() ([]string, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
}

var _ QueueInspector = (*asynq.Inspector)(nil)

// QueueCollector exports asynq's queue sizes and latency, read through the
// Inspector at scrape time. Its labels are queue names (fanout has four)
// and task states.
type QueueCollector struct {
	insp      QueueInspector
	tasks     *prometheus.Desc
	latency   *prometheus.Desc
	paused    *prometheus.Desc
	processed *prometheus.Desc
	failed    *prometheus.Desc
	errors    *prometheus.Desc
}

// NewQueueCollector returns a collector over insp.
func NewQueueCollector(insp QueueInspector) *QueueCollector {
	return &QueueCollector{
		insp: insp,
		tasks: prometheus.NewDesc("fanout_queue_tasks", "Tasks in an asynq queue by state.",
			[]string{"queue", "state"}, nil),
		latency: prometheus.NewDesc("fanout_queue_latency_seconds", "Age of the oldest pending task of a queue.",
			[]string{"queue"}, nil),
		paused: prometheus.NewDesc("fanout_queue_paused", "1 when the queue is paused in asynq (fanout never does this; an operator may, from the Asynq UI).",
			[]string{"queue"}, nil),
		processed: prometheus.NewDesc("fanout_queue_processed_today", "Tasks processed today (UTC) by a queue, failures included, as asynq counts them.",
			[]string{"queue"}, nil),
		failed: prometheus.NewDesc("fanout_queue_failed_today", "Task runs that failed today (UTC) in a queue, as asynq counts them.",
			[]string{"queue"}, nil),
		errors: prometheus.NewDesc("fanout_queue_scrape_error", "1 when the last scrape could not read a queue.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.tasks, c.latency, c.paused, c.processed, c.failed, c.errors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	failed := 0.0
	queues, err := c.insp.Queues()
	if err != nil {
		failed = 1
	}
	for _, q := range queues {
		info, err := c.insp.GetQueueInfo(q)
		if err != nil {
			failed = 1
			continue
		}
		for state, n := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived, "completed": info.Completed, "aggregating": info.Aggregating} {
			ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(n), q, state)
		}
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, info.Latency.Seconds(), q)
		paused := 0.0
		if info.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, q)
		ch <- prometheus.MustNewConstMetric(c.processed, prometheus.GaugeValue, float64(info.Processed), q)
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.GaugeValue, float64(info.Failed), q)
	}
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.GaugeValue, failed)
}
