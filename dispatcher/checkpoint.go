package dispatcher

import (
	"context"
	"time"

	"github.com/fanoutdev/fanout/storage"
)

// snapshot is the state right after a batch was filled.
type snapshot struct {
	row     int
	rowHash uint64
	counts  storage.DispatchCounts
}

// checkpointer owns the checkpoint: what an earlier run did (read by
// resume) and what this one saves over the longest finished prefix of
// batches, with the horizon of batches that may be enqueued unrecorded.
type checkpointer struct {
	ck        storage.Checkpoint
	fast      bool // skip rows up to ck.Row, state restored from the checkpoint
	replayTo  int  // batches below it were done by an earlier run
	resumedAt int

	doneSeqs      map[int]bool
	frontier      int
	snaps         map[int]snapshot
	pendingSeen   []uint64
	committedSeen int
	lastCommitted int // last batch covered by a saved checkpoint; -1 none
	lastCommitAt  time.Time
	horizon       int
	uncertainEnd  int
}

// commit saves a checkpoint at the end of the finished prefix of batches,
// every CheckpointEvery batches or second, or now when force is set.
func (r *run) commit(ctx context.Context, force bool) error {
	last := r.ckpt.frontier - 1
	if last <= r.ckpt.lastCommitted || last < r.ckpt.replayTo {
		return nil
	}
	if !force && last-r.ckpt.lastCommitted < r.opts.CheckpointEvery && time.Since(r.ckpt.lastCommitAt) < time.Second {
		return nil
	}
	snap, ok := r.ckpt.snaps[last]
	if !ok {
		return nil
	}
	k := snap.counts.Valid - r.ckpt.committedSeen
	ck := storage.Checkpoint{Seq: last + 1, Row: snap.row, RowHash: snap.rowHash, Counts: snap.counts}
	if err := r.d.store.SaveCheckpoint(ctx, r.spec.ID, ck, r.ckpt.committedSeen, r.ckpt.pendingSeen[:k]); err != nil {
		return err
	}
	r.ckpt.committedSeen = snap.counts.Valid
	r.ckpt.pendingSeen = append(r.ckpt.pendingSeen[:0], r.ckpt.pendingSeen[k:]...)
	for s := r.ckpt.lastCommitted + 1; s <= last; s++ {
		delete(r.ckpt.snaps, s)
	}
	r.ckpt.lastCommitted = last
	r.ckpt.lastCommitAt = time.Now()
	return nil
}

// done marks batch seq enqueued and recorded, and advances the frontier
// over the finished prefix.
func (k *checkpointer) done(seq int) {
	k.doneSeqs[seq] = true
	for k.doneSeqs[k.frontier] {
		delete(k.doneSeqs, k.frontier)
		k.frontier++
	}
}
