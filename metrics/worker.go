package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fanoutdev/fanout/ratelimit"
)

// Worker is the instrumentation of one worker process: its own registry
// (no global one), with the Go runtime and process collectors, the provider
// latency histogram and the limiter counters.
type Worker struct {
	reg      *prometheus.Registry
	provider *prometheus.HistogramVec
	asked    *prometheus.CounterVec
	refused  *prometheus.CounterVec
	wait     *prometheus.HistogramVec
	blocked  *prometheus.CounterVec
	failures *prometheus.CounterVec
}

// NewWorker returns a worker's metrics, registered on a new registry.
func NewWorker() *Worker {
	w := &Worker{
		reg: prometheus.NewRegistry(),
		provider: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fanout_provider_request_duration_seconds",
			Help:    "OneRoute request time from the first byte written to the response headers, by endpoint (path template) and status class (2xx, 4xx, 5xx, error).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30},
		}, []string{"endpoint", "status_class"}),
		asked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fanout_ratelimit_permits_requested_total", Help: "Send permits asked of the shared rate limiter, by channel.",
		}, []string{"channel"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fanout_ratelimit_refusals_total", Help: "Limiter answers that said wait (the batch is held back), by channel.",
		}, []string{"channel"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fanout_ratelimit_wait_seconds",
			Help:    "How long the limiter made a request wait: the reservation's delay, or the retry-after of a refusal, by channel.",
			Buckets: []float64{0, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"channel"}),
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fanout_ratelimit_blocks_total", Help: "Senders blocked for every worker after a provider 429, by channel.",
		}, []string{"channel"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fanout_ratelimit_errors_total", Help: "Limiter calls that failed (Redis errors), by channel.",
		}, []string{"channel"}),
	}
	w.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		w.provider, w.asked, w.refused, w.wait, w.blocked, w.failures)
	return w
}

// Registry is the worker's registry, to add collectors to.
func (w *Worker) Registry() *prometheus.Registry { return w.reg }

// Transport wraps next so every request is timed.
func (w *Worker) Transport(next http.RoundTripper) *Transport {
	return &Transport{next: next, hist: w.provider}
}

// Limiter wraps next so its waits are counted.
func (w *Worker) Limiter(next ratelimit.Limiter) *Limiter {
	return &Limiter{next: next, asked: w.asked, refused: w.refused, wait: w.wait, blocked: w.blocked, failures: w.failures}
}

// Handler serves the registry in Prometheus' text format.
func (w *Worker) Handler() http.Handler {
	return promhttp.HandlerFor(w.reg, promhttp.HandlerOpts{Registry: w.reg})
}
