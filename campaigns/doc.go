// Package campaigns is fanout's domain, in plain values: the campaign spec
// and its validation, channels, rates, the template renderer, the batches
// and items that travel through asynq, outcomes, send windows (Window),
// and the campaign states and progress the storage package reads back from
// Redis.
//
// It imports no Redis, no asynq and no HTTP: the recipients reader, the
// dispatcher, the worker, the storage package and the command line all
// share these types.
//
//	spec, err := campaigns.LoadSpec("examples/sms.yaml")
//	r, err := spec.Compile()                // the restricted template language
//	c, err := r.Render(map[string]string{"first_name": "Ada"})
package campaigns
