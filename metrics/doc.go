// Package metrics holds fanout's Prometheus instrumentation: collectors that
// read campaign counters and asynq queues at scrape time, a transport that
// times OneRoute requests, a rate-limiter decorator that counts waits, and
// the worker's small health server.
//
// Nothing here keeps state of its own between scrapes except the
// transport's and the limiter's histograms: campaign outcomes come from the
// counters storage keeps in Redis, queue sizes from asynq's Inspector, so
// every scrape shows what Redis holds, whichever process wrote it.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.NewCampaignCollector(store, time.Hour), metrics.NewQueueCollector(inspector))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Label cardinality is bounded: campaign ids appear only for campaigns that
// are not final or finished within the recent window, endpoints are path
// templates ("/api/public/channel/{id}/sms"), senders are reduced to their
// channel, and no recipient ever appears in a label. See
// docs/monitoring.md for every series.
package metrics
