package storage

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
)

// Batch copies: a durable copy of every batch task's payload (and of every
// delivery-report poll's, under keys starting "dlr:"), so that a task
// deleted or archived outside fanout (from the Asynq UI, say) can be
// re-created and its campaign never strands. Invariant: every recipient of a
// campaign that is not final is in at least one kept copy. A copy is saved
// before its task is enqueued, and dropped only once every row it holds is
// final, or is held by another copy whose task still exists, or the
// campaign is completed.

const (
	auditKey      = "fanout:audit"      // set of campaign ids that have copies
	auditLeadKey  = "fanout:audit:lead" // the worker running this round's audit
	copyChunkSize = 100                 // copies read per HSCAN step
)

func copiesKey(id string) string { return "fanout:{" + id + "}:copy" }

// Copy is one batch task's durable copy.
type Copy struct {
	// Key names the task in its campaign: its task id without the
	// "<campaign>:" prefix ("b12", "b12r1-<hash>", "dlr:b12-<token>-<hash>:3").
	Key string
	// Rows are the batch's rows.
	Rows []int
	// Payload is the task's payload, as it was enqueued.
	Payload []byte
}

// SaveCopy keeps a durable copy of a batch task before it is enqueued: its
// rows, and its payload compressed. Saving the same copy again is harmless.
func (s *Store) SaveCopy(ctx context.Context, id string, c Copy) error {
	v, err := encodeCopy(c)
	if err != nil {
		return fmt.Errorf("copy batch %s of %s: %w", c.Key, id, err)
	}
	pipe := s.rdb.Pipeline()
	pipe.HSet(ctx, copiesKey(id), c.Key, v)
	pipe.SAdd(ctx, auditKey, id)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("copy batch %s of %s: %w", c.Key, id, err)
	}
	return nil
}

// Copies walks the batch copies of a campaign, copyChunkSize at a time:
// fn gets each chunk. Copies saved or dropped during the walk may or may not
// be seen (HSCAN), but one present throughout is seen at least once.
func (s *Store) Copies(ctx context.Context, id string, fn func([]Copy) error) error {
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, copiesKey(id), cursor, "", copyChunkSize).Result()
		if err != nil {
			return fmt.Errorf("read batch copies of %s: %w", id, err)
		}
		chunk := make([]Copy, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			c, err := decodeCopy(kv[i], []byte(kv[i+1]))
			if err != nil {
				return fmt.Errorf("batch copy %s of %s is damaged: %w; delete the field to drop it", kv[i], id, err)
			}
			chunk = append(chunk, c)
		}
		if len(chunk) > 0 {
			if err := fn(chunk); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// DropCopies forgets the named batch copies of a campaign.
func (s *Store) DropCopies(ctx context.Context, id string, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if err := s.rdb.HDel(ctx, copiesKey(id), keys...).Err(); err != nil {
		return fmt.Errorf("drop batch copies of %s: %w", id, err)
	}
	return nil
}

// DropAllCopies forgets every batch copy of a campaign (completed, or gone)
// and takes it off the audit list.
func (s *Store) DropAllCopies(ctx context.Context, id string) error {
	pipe := s.rdb.Pipeline()
	pipe.Del(ctx, copiesKey(id))
	pipe.SRem(ctx, auditKey, id)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("drop batch copies of %s: %w", id, err)
	}
	return nil
}

// Audited lists the campaigns that have batch copies: those an audit looks
// at.
func (s *Store) Audited(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, auditKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list audited campaigns: %w", err)
	}
	return ids, nil
}

// LeadAudit makes owner the one worker that audits for ttl, unless another
// worker holds the lead; it reports whether owner leads. The holder renews
// its lead by calling again before ttl passes.
func (s *Store) LeadAudit(ctx context.Context, owner string, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, auditLeadKey, owner, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("audit lead: %w", err)
	}
	if ok {
		return true, nil
	}
	// Renew if we hold it (a race with expiry only costs one round).
	cur, err := s.rdb.Get(ctx, auditLeadKey).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("audit lead: %w", err)
	}
	if cur != owner {
		return false, nil
	}
	return true, s.rdb.PExpire(ctx, auditLeadKey, ttl).Err()
}

// Activity is what an audit needs to know of a campaign: its state, whether
// recipients are still to be sent, and when it last made progress.
type Activity struct {
	State   campaigns.State
	Channel campaigns.Channel
	// Pending counts recipients not yet sent, failed, unknown or skipped.
	Pending int64
	// AwaitingDLR counts accepted SMS without a final delivery report, for
	// a campaign that follows them.
	AwaitingDLR int64
	// Last is the last ledger change, or the creation time.
	Last time.Time
	// NextOpening is the latest opening a worker noted for work waiting
	// for the send window (NoteOpening); zero when none.
	NextOpening time.Time
}

// Activity reads a campaign's state and last progress.
func (s *Store) Activity(ctx context.Context, id string) (Activity, error) {
	v, err := s.rdb.HMGet(ctx, campaignKey(id), "state", "channel", "total", "sent", "failed", "unknown", "skipped", "updated_at", "created_at",
		"dlr", "delivered", "undelivered", "dlr_expired", "next_opening").Result()
	if err != nil {
		return Activity{}, fmt.Errorf("read campaign %s: %w", id, err)
	}
	str := func(i int) string { s, _ := v[i].(string); return s }
	num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
	if str(0) == "" {
		return Activity{}, fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	}
	last := num(7)
	if last == 0 {
		last = num(8)
	}
	act := Activity{State: campaigns.State(str(0)), Channel: campaigns.Channel(str(1)),
		Pending: num(2) - num(3) - num(4) - num(5) - num(6), Last: time.UnixMilli(last)}
	if str(9) == "1" {
		act.AwaitingDLR = num(3) - num(10) - num(11) - num(12)
	}
	if at := num(13); at > 0 {
		act.NextOpening = time.UnixMilli(at)
	}
	return act, nil
}

// AwaitingDLR returns the rows among rows that are accepted and still
// await their delivery report.
func (s *Store) AwaitingDLR(ctx context.Context, id string, rows []int) ([]int, error) {
	return s.rowsIn(ctx, id, rows, LedgerAccepted)
}

// NotFinal returns the rows among rows that are not final: pending,
// claimed or sending.
func (s *Store) NotFinal(ctx context.Context, id string, rows []int) ([]int, error) {
	return s.rowsIn(ctx, id, rows, 0, LedgerClaimed, LedgerSending)
}

// rowsIn returns the rows among rows whose ledger state is one of states
// (0: pending).
func (s *Store) rowsIn(ctx context.Context, id string, rows []int, states ...byte) ([]int, error) {
	entries, err := s.Ledger(ctx, id, rows)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		if slices.Contains(states, e.State) {
			out = append(out, e.Row)
		}
	}
	return out, nil
}

// Settled counts what SettleCancelled did.
type Settled struct {
	// Skipped: pending or claimed rows, now skipped.
	Skipped int
	// Abandoned: rows whose request started before the cutoff and never
	// settled, now unknown (they may have been sent).
	Abandoned int
	// InFlight: rows whose request started after the cutoff; their attempt
	// records them (or a later call abandons them).
	InFlight int
}

// SettleCancelled settles every recipient of a cancelled campaign that is
// not final yet, whatever became of its task, so that sent + failed +
// unknown + skipped = total: pending and claimed rows become skipped (a
// claim's owner then cannot stamp them, so they are never sent), and rows
// whose request started before abandonBefore become unknown. Rows sending
// since then are left to their attempt. It works through the campaign's
// batch copies, a chunk at a time, and drops them once nothing is left in
// flight. It refuses a campaign that is not cancelled.
func (s *Store) SettleCancelled(ctx context.Context, id string, abandonBefore time.Time) (Settled, error) {
	var out Settled
	act, err := s.Activity(ctx, id)
	if err != nil {
		return out, err
	}
	if act.State != campaigns.StateCancelled {
		return out, fmt.Errorf("settle campaign %s: it is %s: %w", id, act.State, ErrTransition)
	}
	err = s.Copies(ctx, id, func(chunk []Copy) error {
		var rows []int
		for _, c := range chunk {
			rows = append(rows, c.Rows...)
		}
		entries, err := s.Ledger(ctx, id, rows)
		if err != nil {
			return err
		}
		var skip, abandon []campaigns.Outcome
		for _, e := range entries {
			switch e.State {
			case 0, LedgerClaimed:
				skip = append(skip, campaigns.Outcome{Row: e.Row, State: LedgerSkipped, Value: "cancelled"})
			case LedgerSending:
				if sendingSince(e.Value).Before(abandonBefore) {
					abandon = append(abandon, campaigns.Outcome{Row: e.Row, State: LedgerUnknown, Value: "cancelled while sending"})
				} else {
					out.InFlight++
				}
			}
		}
		n, err := s.Record(ctx, id, ModeSkip, "", skip)
		if err != nil {
			return err
		}
		out.Skipped += n
		n, err = s.Record(ctx, id, ModeAbandon, "", abandon)
		out.Abandoned += n
		return err
	})
	if err != nil {
		return out, err
	}
	if out.InFlight == 0 {
		return out, s.DropAllCopies(ctx, id)
	}
	return out, nil
}

// sendingSince is the time of a sending row's last stamp ("<ms>:<token>:<since>").
func sendingSince(v string) time.Time {
	ms, _, _ := strings.Cut(v, ":")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return time.UnixMilli(n)
}

// encodeCopy lays a copy out as: uvarint count of rows, the rows as
// uvarint deltas from the previous row (zig-zag, any order), then the
// payload gzipped.
func encodeCopy(c Copy) ([]byte, error) {
	var buf bytes.Buffer
	var tmp [binary.MaxVarintLen64]byte
	buf.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(c.Rows)))])
	prev := 0
	for _, r := range c.Rows {
		buf.Write(tmp[:binary.PutVarint(tmp[:], int64(r-prev))])
		prev = r
	}
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(c.Payload); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeCopy(key string, v []byte) (Copy, error) {
	r := bytes.NewReader(v)
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(len(v)) {
		return Copy{}, errors.New("bad row count")
	}
	c := Copy{Key: key, Rows: make([]int, n)}
	prev := 0
	for i := range c.Rows {
		d, err := binary.ReadVarint(r)
		if err != nil {
			return Copy{}, errors.New("bad rows")
		}
		prev += int(d)
		c.Rows[i] = prev
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return Copy{}, err
	}
	if c.Payload, err = io.ReadAll(zr); err != nil {
		return Copy{}, err
	}
	return c, nil
}
