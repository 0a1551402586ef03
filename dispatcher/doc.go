// Package dispatcher expands a campaign into asynq tasks: it streams the
// recipient source, validates and normalises every row, drops duplicates and
// suppressed recipients, renders each message, and enqueues batches of
// recipients under deterministic task ids, so that running it twice, or again
// after a crash, enqueues nothing twice and skips nothing.
//
// Open checks a recipient file against its spec before anything connects
// anywhere (header, a full prescan of a regular file, the first renders) and
// derives the campaign id; Dispatch expands it, and DispatchDetached hands it
// to the workers instead (fanout dispatch --detach):
//
//	in, err := dispatcher.Open(spec, spec.RecipientsPath(), os.Stdin, recipients.OptionsOf(spec))
//	if err != nil {
//		return err // errors.Is(err, dispatcher.ErrBadInput)
//	}
//	defer in.Close()
//	res, err := dispatcher.Dispatch(ctx, store, asynqClient, in.Spec, in.Source, dispatcher.Options{BatchSize: 50})
//	fmt.Println(res.ID, res.Valid, res.Invalid)
//
// A dispatch runs as a pipeline of stages:
//
//   - the reader streams rows into chunks, skipping what a checkpoint covers;
//   - the row workers, one per core, normalise the address, hash it for
//     dedupe and render the message;
//   - the applier takes the chunks back in file order, counts, drops
//     duplicates and fills batches, so batch n always holds the same
//     recipients whatever the timing;
//   - the enqueue pool enqueues batches several at a time and records them;
//   - the checkpointer saves a checkpoint in Redis (storage.Checkpoint) over
//     the longest finished prefix of batches, so a re-run skips what an
//     earlier run did without a Redis look-up per batch, and keeps the
//     horizon of batches that may have been enqueued unrecorded.
//
// With Options.Window the dispatcher waits for workers before Redis holds
// more than Window unfinished batches of the campaign. NewExpandHandler runs
// the same expansion inside a worker.
package dispatcher
