package dispatcher

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// A dispatch's checkpoint lives beside the campaign, under its hash tag:
//
//	fanout:{id}:ckpt  hash: where expansion got to (see checkpoint)
//	fanout:{id}:seen  string: the 8-byte hashes of every recipient in the
//	                  batches before seq, so a resumed run skips duplicates
//	                  it can no longer see; deleted once expansion is done
//
// Invariants: every batch below seq was enqueued and recorded (AddBatch);
// no batch at or above horizon was ever started, so only batches in
// [seq, horizon) need a HasBatch look-up when a run resumes.
func ckptKey(id string) string { return "fanout:{" + id + "}:ckpt" }
func seenKey(id string) string { return "fanout:{" + id + "}:seen" }

// checkpoint is the state of an expansion at a batch boundary: right after
// the row that filled batch seq-1.
type checkpoint struct {
	Seq     int    // next batch to expand
	Horizon int    // no batch at or above it was started
	Row     int    // the last row read before the boundary (0: none)
	RowHash uint64 // hash of that row's address field, to detect an edited file
	Counts  counts // tallies up to Row
	Done    bool   // the whole file was expanded
}

// counts are a dispatch's tallies.
type counts struct {
	Rows, Valid, Invalid, Duplicates, Suppressed int
}

func loadCheckpoint(ctx context.Context, rdb redis.UniversalClient, id string) (checkpoint, error) {
	m, err := rdb.HGetAll(ctx, ckptKey(id)).Result()
	if err != nil {
		return checkpoint{}, fmt.Errorf("read checkpoint of %s: %w", id, err)
	}
	n := func(k string) int { v, _ := strconv.Atoi(m[k]); return v }
	rh, _ := strconv.ParseUint(m["rh"], 10, 64)
	return checkpoint{
		Seq: n("seq"), Horizon: n("horizon"), Row: n("row"), RowHash: rh, Done: m["done"] == "1",
		Counts: counts{Rows: n("rows"), Valid: n("valid"), Invalid: n("invalid"), Duplicates: n("dup"), Suppressed: n("supp")},
	}, nil
}

// saveCheckpoint stores c and appends the hashes of the recipients added
// since the last checkpoint (from seen index from on), atomically.
func saveCheckpoint(ctx context.Context, rdb redis.UniversalClient, id string, c checkpoint, from int, hashes []uint64) error {
	pipe := rdb.TxPipeline()
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

// saveHorizon records that batches below horizon may be started.
func saveHorizon(ctx context.Context, rdb redis.UniversalClient, id string, horizon int) error {
	if err := rdb.HSet(ctx, ckptKey(id), "horizon", horizon).Err(); err != nil {
		return fmt.Errorf("save checkpoint of %s: %w", id, err)
	}
	return nil
}

// loadSeen reads the first n stored recipient hashes into set.
func loadSeen(ctx context.Context, rdb redis.UniversalClient, id string, n int, set *hashSet) error {
	const step = 128 << 10 // hashes per read (1 MiB)
	for start := 0; start < n; start += step {
		end := min(n, start+step)
		s, err := rdb.GetRange(ctx, seenKey(id), int64(start)*8, int64(end)*8-1).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("read checkpoint of %s: %w", id, err)
		}
		if len(s) != (end-start)*8 {
			return fmt.Errorf("checkpoint of %s is damaged: %d recipient hashes stored, %d expected; dispatch the file under a new id", id, start+len(s)/8, n)
		}
		for i := 0; i+8 <= len(s); i += 8 {
			set.Add(binary.LittleEndian.Uint64([]byte(s[i : i+8])))
		}
	}
	return nil
}
