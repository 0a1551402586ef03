// Package worker runs fanout's asynq handlers: it sends batches of recipients
// through OneRoute under the shared rate limits, records every outcome in the
// campaign ledger so that no task run sends twice, and follows accepted SMS
// to their delivery reports.
//
//	deps := worker.Deps{Store: storage.New(rdb), Provider: client, Enqueuer: asynq.NewClientFromRedisClient(rdb),
//		Limiter: ratelimit.NewRedis(rdb), Logger: log}
//	srv := worker.NewServer(rdb, deps, worker.Options{})
//	err := srv.Run(ctx) // returns after ctx is cancelled and in-flight sends are recorded
//
// # The send path
//
// Every batch task (sms:send, whatsapp:template, email:send, whatsapp:campaign) takes the same
// steps, each a short function of batch.go, reconcile.go, send.go and plan.go:
//
//   - claim: recipients who opted out since the dispatch are settled as
//     skipped (optout.go); the attempt claims the batch's rows in the ledger
//     with its own token; rows already settled are skipped, rows of a
//     vanished attempt come back stale;
//   - reconcile: stale rows whose request may have reached OneRoute are
//     looked up before any resend (found: accepted; provably absent: sent;
//     otherwise unknown, or resent when the campaign sets at_least_once);
//   - pace: reserve the first request's permits from the shared rate
//     limiter, or give the claims back;
//   - send: split a batched call into requests of at most the burst; at
//     each request's permit time, stamp its rows and make it (pace.go);
//   - settle: map the answers to ledger outcomes (Decide is the only table
//     from error to action) and record them atomically;
//   - follow: carry out the plan the steps left: the campaign's
//     delivery-report sweep, one smaller child task for the unfinished part,
//     a shared throttle, a pause.
//
// A channel handler (sms.go, whatsapp.go, email.go) says only how its
// requests are built: one request for the batch, or one per recipient.
// sweep.go reads a campaign's delivery reports in bulk from its channel's
// message list (dlr.go still serves dlr:poll tasks queued by older
// versions); actions.go maps errors to actions;
// server.go runs it all and stops gracefully. optout.go also holds
// OptOuts, which turns inbound STOP replies (webhook events) into opt-outs.
package worker
