// Package campaigns is fanout's domain: the campaign spec, recipients and
// their sources, the batches and items that travel through asynq, and the
// campaign states and progress the storage package reads back from Redis.
//
// It imports no Redis, no asynq and no HTTP: the dispatcher, the worker, the
// storage package and the command line all share these types.
//
//	spec, err := campaigns.LoadSpec("examples/sms.yaml")
//	src, err := campaigns.OpenSource(spec.RecipientsPath(), campaigns.SourceOptions{})
//	p, err := storage.New(rdb).Progress(ctx, spec.ID) // a campaigns.Progress
package campaigns
