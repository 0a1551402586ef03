// Package monitor is the web app of `fanout monitor`: a campaign dashboard
// (server-rendered HTML that reloads itself), a JSON API, the Asynq web UI
// and Prometheus metrics, behind HTTP basic auth with operator and viewer
// roles, and health routes without it.
//
// It takes what it serves as options, so cmd/fanout wires Redis, asynqmon
// and the metrics registry, and tests pass fakes:
//
//	h := monitor.New(monitor.Options{
//		Store:   storage.New(rdb),
//		Auth:    monitor.Auth{Operator: &monitor.Credentials{User: "ops", Password: secret}},
//		AsynqUI: asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: opt,
//			PayloadFormatter: asynqmon.PayloadFormatterFunc(monitor.FormatPayload)}),
//		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
//	})
//	http.ListenAndServe("127.0.0.1:8080", h)
//
// Pause, resume and cancel call the same storage.Store methods as the
// command line. The pages read campaign counters, reasons and specs, never
// per-recipient data. Payloads in the Asynq UI go through FormatPayload,
// which never shows an address. See docs/monitoring.md.
package monitor
