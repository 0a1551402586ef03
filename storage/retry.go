package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
)

// Retrying failed recipients (fanout retry-failed). The ledger keeps a
// failed row's reason but not its address or content, and a campaign's
// batch copies are dropped once their rows are final, so the workers keep
// what a retry needs when they record a row failed: the row's item
// (address and content) and, once per campaign, the batch's common part
// (channel, sender, template, shared content, rate), in fanout:{id}:rf.
// ResetFailed then moves chosen failed rows back to pending in one script,
// and the caller enqueues batches built from that source (worker.RetryFailed).

// headField is the field of the retry source holding the common part of
// the campaign's batches; every other field is a row.
const headField = "batch"

// ErrRoundTaken is returned by ResetFailed when the campaign's retries
// moved on since the caller read them: another retry-failed ran meanwhile.
var ErrRoundTaken = errors.New("another retry of the campaign started meanwhile")

// ErrCopiesGone is returned by ResetFailed when a batch copy the caller
// saved for the round is gone (the auditor dropped the copies of the
// completed campaign meanwhile): save them again and retry.
var ErrCopiesGone = errors.New("batch copies of the retry were dropped")

// SaveRetrySource keeps the items of rows about to be recorded failed, and
// the common part of their batch, so that fanout retry-failed can send
// them again. Saving the same rows again is harmless.
func (s *Store) SaveRetrySource(ctx context.Context, id string, b *campaigns.Batch, items []campaigns.Item) error {
	if len(items) == 0 {
		return nil
	}
	head := *b
	head.Items, head.Seq, head.Attempt, head.Failures, head.Retry = nil, 0, 0, 0, 0
	hv, err := json.Marshal(head)
	if err != nil {
		return fmt.Errorf("keep retry source of %s: %w", id, err)
	}
	fields := make([]any, 0, 2+2*len(items))
	fields = append(fields, headField, hv)
	for _, it := range items {
		v, err := json.Marshal(it)
		if err != nil {
			return fmt.Errorf("keep retry source of %s: %w", id, err)
		}
		fields = append(fields, strconv.Itoa(it.Row), v)
	}
	if err := s.rdb.HSet(ctx, retrySrcKey(id), fields...).Err(); err != nil {
		return fmt.Errorf("keep retry source of %s: %w", id, err)
	}
	return nil
}

// RetrySource reads back what SaveRetrySource kept for rows: the common
// part of the campaign's batches (nil when none was kept) and the items
// found, in the order of rows; rows with no item kept are left out.
func (s *Store) RetrySource(ctx context.Context, id string, rows []int) (*campaigns.Batch, []campaigns.Item, error) {
	fields := make([]string, 0, len(rows)+1)
	fields = append(fields, headField)
	for _, r := range rows {
		fields = append(fields, strconv.Itoa(r))
	}
	v, err := s.rdb.HMGet(ctx, retrySrcKey(id), fields...).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("read retry source of %s: %w", id, err)
	}
	var head *campaigns.Batch
	if hv, ok := v[0].(string); ok {
		head = new(campaigns.Batch)
		if err := json.Unmarshal([]byte(hv), head); err != nil {
			return nil, nil, fmt.Errorf("retry source of %s is damaged: %w", id, err)
		}
	}
	items := make([]campaigns.Item, 0, len(rows))
	for i, x := range v[1:] {
		sv, ok := x.(string)
		if !ok {
			continue
		}
		var it campaigns.Item
		if err := json.Unmarshal([]byte(sv), &it); err != nil || it.Row != rows[i] {
			return nil, nil, fmt.Errorf("retry source of %s is damaged at row %d", id, rows[i])
		}
		items = append(items, it)
	}
	return head, items, nil
}

// Retries reads how many retry rounds a campaign had (ErrNotFound when it
// does not exist).
func (s *Store) Retries(ctx context.Context, id string) (int, error) {
	v, err := s.rdb.HMGet(ctx, campaignKey(id), "state", "retries").Result()
	if err != nil {
		return 0, fmt.Errorf("read campaign %s: %w", id, err)
	}
	if st, _ := v[0].(string); st == "" {
		return 0, fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	}
	n, _ := v[1].(string)
	r, _ := strconv.Atoi(n)
	return r, nil
}

// RetriedRows reads how many times each of rows was reset by ResetFailed
// (0 for rows never retried).
func (s *Store) RetriedRows(ctx context.Context, id string, rows []int) ([]int, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	fields := make([]string, len(rows))
	for i, r := range rows {
		fields[i] = strconv.Itoa(r)
	}
	v, err := s.rdb.HMGet(ctx, retriedKey(id), fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("read retried rows of %s: %w", id, err)
	}
	out := make([]int, len(rows))
	for i, x := range v {
		if sv, ok := x.(string); ok {
			out[i], _ = strconv.Atoi(sv)
		}
	}
	return out, nil
}

// ResetResult is what ResetFailed did.
type ResetResult struct {
	// Reset counts the rows moved from failed back to pending.
	Reset int
	// Retries is the campaign's retry rounds now (round, when Reset > 0).
	Retries int
	// State is the campaign's state now.
	State campaigns.State
}

// ResetFailed moves rows that are failed back to pending, atomically, as
// retry round round (the campaign's retries + 1): failed is decremented
// by the rows reset and their reasons' counts too, so sent + failed +
// unknown + skipped + pending = total still holds; the campaign goes back
// to running (a paused one stays paused). Rows in any other state (sent,
// unknown, skipped, in flight, already pending) are left alone, so no
// recipient that may have been sent is sent again.
//
// copyKeys are the batch copies (SaveCopy) of the round's tasks, saved
// before the call: the script checks that each still exists, so that a
// campaign never runs again with rows no copy holds. It returns
// ErrNotFound, ErrTransition (a campaign dispatching or cancelled),
// ErrRoundTaken or ErrCopiesGone without changing anything.
//
// A large round is reset in chunks: first is true for the round's first
// call (the campaign's retries must then be round - 1) and false for the
// chunks after it (retries must be round).
func (s *Store) ResetFailed(ctx context.Context, id string, round int, first bool, copyKeys []string, rows []int) (ResetResult, error) {
	keys := newKeyList(campaignKey(id), whyKey(id), retriedKey(id), copiesKey(id))
	args := make([]any, 0, 3+len(copyKeys)+2*len(rows))
	f := "0"
	if first {
		f = "1"
	}
	args = append(args, round, f, len(copyKeys))
	for _, k := range copyKeys {
		args = append(args, k)
	}
	for _, r := range rows {
		args = append(args, keys.index(bucketKey(id, r)), r)
	}
	res, err := retryScript.Run(ctx, s.rdb, keys.keys, args...).StringSlice()
	if err != nil {
		return ResetResult{}, fmt.Errorf("reset failed rows of %s: %w", id, err)
	}
	switch res[0] {
	case "missing":
		return ResetResult{}, fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	case "state":
		return ResetResult{State: campaigns.State(res[1])}, fmt.Errorf("retry campaign %s: it is %s: %w", id, res[1], ErrTransition)
	case "round":
		n, _ := strconv.Atoi(res[1])
		return ResetResult{Retries: n}, fmt.Errorf("retry campaign %s: %w", id, ErrRoundTaken)
	case "copies":
		return ResetResult{}, fmt.Errorf("retry campaign %s: copy %s: %w", id, res[1], ErrCopiesGone)
	}
	n, _ := strconv.Atoi(res[1])
	r, _ := strconv.Atoi(res[2])
	return ResetResult{Reset: n, Retries: r, State: campaigns.State(res[3])}, nil
}

// FailedRows walks the failed rows of a campaign in row order, one ledger
// bucket (up to 100 rows) at a time: fn gets each bucket's failed entries
// (Value is the reason as the ledger keeps it: its first 59 bytes).
func (s *Store) FailedRows(ctx context.Context, id string, fn func([]Entry) error) error {
	return s.ScanOrdered(ctx, id, func(chunk []Entry) error {
		var failed []Entry
		for _, e := range chunk {
			if e.State == LedgerFailed {
				failed = append(failed, e)
			}
		}
		if len(failed) == 0 {
			return nil
		}
		return fn(failed)
	})
}

// ScanOrdered walks every ledger entry of a campaign in row order, one
// bucket (up to 100 rows) at a time, so memory stays bounded whatever the
// campaign's size. Rows without an entry (pending, or refused by the
// dispatcher) are not visited. It returns ErrNotFound for a campaign that
// does not exist.
func (s *Store) ScanOrdered(ctx context.Context, id string, fn func([]Entry) error) error {
	v, err := s.rdb.HMGet(ctx, campaignKey(id), "state", "maxrow").Result()
	if err != nil {
		return fmt.Errorf("scan ledger of %s: %w", id, err)
	}
	if st, _ := v[0].(string); st == "" {
		return fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	}
	ms, _ := v[1].(string)
	maxRow, _ := strconv.Atoi(ms)
	for b := 0; b <= maxRow/bucketSize; b++ {
		m, err := s.rdb.HGetAll(ctx, bucketKey(id, b*bucketSize)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("scan ledger of %s: %w", id, err)
		}
		if len(m) == 0 {
			continue
		}
		chunk := make([]Entry, 0, len(m))
		for k, v := range m {
			row, _ := strconv.Atoi(k)
			e := Entry{Row: row}
			if v != "" {
				e.State, e.Value = v[0], v[1:]
			}
			chunk = append(chunk, e)
		}
		slices.SortFunc(chunk, func(a, b Entry) int { return a.Row - b.Row })
		if err := fn(chunk); err != nil {
			return err
		}
	}
	return nil
}
