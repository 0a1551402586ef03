// Package campaigns is fanout's domain: the campaign spec, recipients and
// their sources, the task types and payloads that travel through asynq, and
// the campaign store that keeps per-campaign progress counters and the
// per-recipient send ledger in Redis.
//
// It imports no asynq server and no HTTP: the dispatcher, the worker and the
// command line all share these types.
//
//	spec, err := campaigns.LoadSpec("examples/sms.yaml")
//	src, err := campaigns.OpenSource(spec.RecipientsPath(), campaigns.SourceOptions{})
//	store := campaigns.NewStore(rdb)
//	p, err := store.Progress(ctx, spec.ID)
package campaigns
