package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Checkpoint is the state of an expansion at a batch boundary: right after
// the row that filled batch Seq-1. It lives beside the campaign in
// fanout:{id}:ckpt, with the hashes of every recipient in the batches
// before Seq in fanout:{id}:seen, so a resumed run skips duplicates it can
// no longer see (keys.go).
//
// Invariants: every batch below Seq was enqueued and recorded (AddBatch);
// no batch at or above Horizon was ever started, so only batches in
// [Seq, Horizon) need a HasBatch look-up when a run resumes.
type Checkpoint struct {
	Seq     int            // next batch to expand
	Horizon int            // no batch at or above it was started
	Row     int            // the last row read before the boundary (0: none)
	RowHash uint64         // hash of that row's address field, to detect an edited file
	Counts  DispatchCounts // tallies up to Row
	Done    bool           // the whole file was expanded
	// BatchSize and Request are the shape of the dispatch's batches
	// (recipients per task, and per batched call): a resumed run must cut
	// the file the same way. 0: not recorded (a dispatch started before
	// they were, or not started).
	BatchSize, Request int
}

// Checkpoint reads the checkpoint of campaign id's dispatch; a campaign
// without one gets the zero Checkpoint (start from the first row).
func (s *Store) Checkpoint(ctx context.Context, id string) (Checkpoint, error) {
	m, err := s.rdb.HGetAll(ctx, ckptKey(id)).Result()
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint of %s: %w", id, err)
	}
	n := func(k string) int { v, _ := strconv.Atoi(m[k]); return v }
	rh, _ := strconv.ParseUint(m["rh"], 10, 64)
	return Checkpoint{
		Seq: n("seq"), Horizon: n("horizon"), Row: n("row"), RowHash: rh, Done: m["done"] == "1", BatchSize: n("bs"), Request: n("rq"),
		Counts: DispatchCounts{Rows: n("rows"), Valid: n("valid"), Invalid: n("invalid"), Duplicates: n("dup"), Suppressed: n("supp")},
	}, nil
}

// SaveCheckpoint stores c and appends the hashes of the recipients added
// since the last checkpoint (from seen index from on), atomically. A Done
// checkpoint deletes the stored hashes: no run needs them any more.
// c.Horizon is not stored: SaveHorizon keeps it.
func (s *Store) SaveCheckpoint(ctx context.Context, id string, c Checkpoint, from int, hashes []uint64) error {
	pipe := s.rdb.TxPipeline()
	if len(hashes) > 0 {
		buf := make([]byte, 8*len(hashes))
		for i, h := range hashes {
			binary.LittleEndian.PutUint64(buf[8*i:], h)
		}
		pipe.SetRange(ctx, seenKey(id), int64(from)*8, string(buf))
	}
	done := "0"
	if c.Done {
		done = "1"
	}
	pipe.HSet(ctx, ckptKey(id), "seq", c.Seq, "row", c.Row, "rh", strconv.FormatUint(c.RowHash, 10),
		"rows", c.Counts.Rows, "valid", c.Counts.Valid, "invalid", c.Counts.Invalid, "dup", c.Counts.Duplicates,
		"supp", c.Counts.Suppressed, "done", done)
	if c.Done {
		pipe.Del(ctx, seenKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("save checkpoint of %s at batch %d: %w", id, c.Seq, err)
	}
	return nil
}

// SaveHorizon records that batches below horizon may be started, and the
// shape they have (Checkpoint.BatchSize and Request).
func (s *Store) SaveHorizon(ctx context.Context, id string, horizon, batchSize, request int) error {
	if err := s.rdb.HSet(ctx, ckptKey(id), "horizon", horizon, "bs", batchSize, "rq", request).Err(); err != nil {
		return fmt.Errorf("save checkpoint of %s: %w", id, err)
	}
	return nil
}

// Seen calls add with each of the first n recipient hashes stored by
// SaveCheckpoint, in order. It reads them 1 MiB at a time, so a
// checkpoint of millions of recipients is never in memory twice. A
// checkpoint with fewer than n hashes is damaged and returns an error.
func (s *Store) Seen(ctx context.Context, id string, n int, add func(uint64)) error {
	const step = 128 << 10 // hashes per read (1 MiB)
	for start := 0; start < n; start += step {
		end := min(n, start+step)
		v, err := s.rdb.GetRange(ctx, seenKey(id), int64(start)*8, int64(end)*8-1).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("read checkpoint of %s: %w", id, err)
		}
		if len(v) != (end-start)*8 {
			return fmt.Errorf("checkpoint of %s is damaged: %d recipient hashes stored, %d expected; dispatch the file under a new id", id, start+len(v)/8, n)
		}
		for i := 0; i+8 <= len(v); i += 8 {
			add(binary.LittleEndian.Uint64([]byte(v[i : i+8])))
		}
	}
	return nil
}
