// Package webhooks receives OneRoute's signed webhook events and applies
// them to campaigns.
//
// Two parts, which may run in different processes:
//
//   - Receiver, the http.Handler of POST /webhooks/oneroute: body cap,
//     signature (HMAC-SHA512, constant time), parse, then the event is
//     recorded in Redis with its dedupe key in one script before the 200.
//     Concurrent requests share one script (group commit), so the handler
//     makes no Redis round trip of its own.
//   - Applier, which reads the recorded events from their Redis stream in
//     batches and feeds them to the send ledger through the same
//     transitions as the delivery-report sweep and polls.
//
// Wiring, as `fanout webhooks` does it:
//
//	store := storage.New(rdb)
//	recv := webhooks.NewReceiver(store, webhooks.ReceiverOptions{Secret: secret})
//	recv.Start()
//	defer recv.Stop()
//	mux.Handle("POST "+webhooks.Path, recv)
//	go webhooks.NewApplier(store, webhooks.ApplierOptions{}).Run(ctx)
//
// See docs/architecture.md, "Webhooks".
package webhooks
