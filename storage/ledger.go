package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
)

// Ledger states of one recipient, as the first byte of its ledger value.
// Pending recipients have no ledger entry.
const (
	// LedgerClaimed: an attempt owns the recipient but has not started a
	// request for it. Value "c<ms>:<token>[:<since>]".
	LedgerClaimed = 'c'
	// LedgerSending: a request for the recipient started at <ms>; the
	// outcome is not known yet. Value "s<ms>:<token>:<since>", where since is
	// the first time any request for it started (for reconciliation).
	LedgerSending     = 's'
	LedgerAccepted    = 'a' // accepted by OneRoute; value holds the provider message id
	LedgerFailed      = 'f' // failed for good; value holds the reason
	LedgerUnknown     = 'u' // ambiguous outcome no lookup could settle; never resent by default
	LedgerSkipped     = 'x' // not sent: campaign cancelled or expired
	LedgerDelivered   = 'd' // delivered (SMS, WhatsApp, email); value holds the provider id
	LedgerUndelivered = 'n' // not delivered: an SMS's final failure report, a WhatsApp or email "failed" after acceptance
	// LedgerRead: a WhatsApp message the customer read; value holds the
	// provider id. Read implies delivered: a row read straight from
	// accepted counts as delivered as well, and a delivered row that is
	// read later moves on to read (counted once in each counter).
	LedgerRead       = 'r'
	LedgerDLRExpired = 'e' // accepted, but no final delivery report came in time
)

// ErrStopped is returned by Stamp when the campaign was paused or
// cancelled: the rows must not be sent now.
var ErrStopped = errors.New("campaign paused or cancelled")

// maxReason bounds a failure reason as counted in status; the ledger keeps
// its first 60 bytes, under the listpack value limit.
const maxReason = 200

// ClaimCode says what a claim found for one recipient.
type ClaimCode int

// Claim outcomes.
const (
	// Claimed: this attempt owns the recipient and no request for it can be
	// in flight or have been made; send it.
	Claimed ClaimCode = iota
	// AlreadyFinal: accepted, failed, unknown or skipped before; do not send.
	AlreadyFinal
	// InFlight: another attempt owns it and may still be working on it.
	InFlight
	// Stale: a request for it started (at ClaimResult.Since) and its attempt
	// vanished (crash, lease expiry, lost answer). This attempt took the
	// claim over and must reconcile with the provider before any resend.
	Stale
)

// ClaimResult is the claim outcome for one row.
type ClaimResult struct {
	Code  ClaimCode
	Since time.Time // for Stale: when the first request for the row started
	// Accepted is the provider id of an AlreadyFinal row that is accepted
	// and still awaits its delivery report.
	Accepted string
}

// ClaimReply is the reply of Claim.
type ClaimReply struct {
	// State is the campaign's state. Nothing is claimed unless it is
	// dispatching or running.
	State   campaigns.State
	Results []ClaimResult
}

// NewToken returns a fresh attempt token: one per execution of a task, so
// that only the attempt owning a claim can stamp or settle it.
func NewToken() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Claim atomically takes ownership of rows for the attempt token. Rows
// already final are reported as such, so a re-run of a task sends only what
// was not settled. A claim or request older than staleAfter (by Redis' clock)
// is taken over. Calling Claim again with the same token is harmless.
func (s *Store) Claim(ctx context.Context, id, token string, rows []int, staleAfter time.Duration) (ClaimReply, error) {
	keys, args := ledgerArgs(id, rows, nil, staleAfter.Milliseconds(), token)
	res, err := claimScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return ClaimReply{}, fmt.Errorf("claim %d rows of %s: %w", len(rows), id, err)
	}
	reply := ClaimReply{State: campaigns.State(res[0])}
	if res[0] == "missing" {
		return reply, fmt.Errorf("claim rows of %s: %w", id, ErrNotFound)
	}
	if len(res) == 1 {
		return reply, nil
	}
	reply.Results = make([]ClaimResult, len(rows))
	for i, code := range res[1:] {
		switch {
		case code == "0":
			reply.Results[i].Code = Claimed
		case code == "1":
			reply.Results[i].Code = AlreadyFinal
		case strings.HasPrefix(code, "a:"):
			reply.Results[i] = ClaimResult{Code: AlreadyFinal, Accepted: code[2:]}
		case code == "2":
			reply.Results[i].Code = InFlight
		case strings.HasPrefix(code, "3:"):
			ms, _ := strconv.ParseInt(code[2:], 10, 64)
			reply.Results[i] = ClaimResult{Code: Stale, Since: time.UnixMilli(ms)}
		}
	}
	return reply, nil
}

// Stamp marks rows as sending just before their request starts, and reports
// which ones this attempt still owns. Only stamped rows may be sent: a row
// whose claim was taken over is left to its new owner. Staleness of a
// sending row is measured from this stamp, so time spent waiting for the
// rate limiter or a free connection never makes a live attempt look dead.
//
// It returns ErrStopped, stamping nothing, when the campaign is paused or
// cancelled.
func (s *Store) Stamp(ctx context.Context, id, token string, rows []int) ([]bool, error) {
	keys, args := ledgerArgs(id, rows, nil, token)
	res, err := stampScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("stamp %d rows of %s: %w", len(rows), id, err)
	}
	if len(res) == 1 && res[0] == -1 && len(rows) >= 1 {
		return nil, ErrStopped
	}
	out := make([]bool, len(res))
	for i, v := range res {
		out[i] = v == 1
	}
	return out, nil
}

// ledgerArgs builds KEYS and ARGV for the ledger scripts: KEYS[1] is the
// campaign hash, KEYS[2] the failure reasons, then one key per distinct bucket; ARGV starts with head and
// then, per row, the bucket index, the row and (when values is set) its value.
func ledgerArgs(id string, rows []int, values []string, head ...any) ([]string, []any) {
	keys := []string{campaignKey(id), whyKey(id)}
	index := map[int]int{}
	args := make([]any, 0, len(head)+len(rows)*3)
	args = append(args, head...)
	for i, row := range rows {
		b := row / bucketSize
		k, ok := index[b]
		if !ok {
			keys = append(keys, bucketKey(id, row))
			k = len(keys)
			index[b] = k
		}
		args = append(args, k, row)
		if values != nil {
			args = append(args, values[i])
		}
	}
	return keys, args
}

// Mode selects which transitions Record may apply.
type Mode string

// Record modes; record.lua says which transitions each allows.
const (
	ModeSend    Mode = "send"
	ModeDLR     Mode = "dlr"
	ModeSkip    Mode = "skip"
	ModeAbandon Mode = "abandon"
)

// Record applies ledger transitions and their counter updates in one atomic
// script. In ModeSend only rows the token's attempt owns change. A
// transition whose source state does not match is ignored, so recording
// twice changes nothing. It returns how many were applied.
//
// The same script keeps the provider-id index (index.go): an SMS row
// recorded accepted in ModeSend, for a campaign with delivery reports, is
// added under its provider id (the outcome's Value); a row named in ModeDLR
// with its provider id as Value is removed.
func (s *Store) Record(ctx context.Context, id string, mode Mode, token string, outs []campaigns.Outcome) (int, error) {
	if len(outs) == 0 {
		return 0, nil
	}
	keys, args := recordArgs(id, mode, outs, string(mode), token, s.indexTTL.Milliseconds())
	n, err := recordScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("record %d outcomes of %s: %w", len(outs), id, err)
	}
	return n, nil
}

// recordArgs builds KEYS and ARGV for record.lua: KEYS[1] is the campaign
// hash, KEYS[2] the failure reasons, then one key per distinct ledger
// bucket and per distinct index bucket; ARGV starts with head and then, per
// outcome, the ledger bucket's index, the row, the value (cut to maxReason)
// and the index bucket's index (0: the index is not touched).
func recordArgs(id string, mode Mode, outs []campaigns.Outcome, head ...any) ([]string, []any) {
	keys := newKeyList(campaignKey(id), whyKey(id))
	args := make([]any, 0, len(head)+len(outs)*4)
	args = append(args, head...)
	for _, o := range outs {
		v := ""
		if o.State != 0 {
			v = string(o.State) + o.Value
			if len(v) > maxReason {
				v = v[:maxReason]
			}
		}
		x := 0
		if o.Value != "" && ((mode == ModeSend && o.State == LedgerAccepted) || mode == ModeDLR) {
			x = keys.index(indexKeyOf(id, o.Value))
		}
		args = append(args, keys.index(bucketKey(id, o.Row)), o.Row, v, x)
	}
	return keys.keys, args
}

// keyList builds a script's KEYS, each key once.
type keyList struct {
	keys []string
	at   map[string]int
}

func newKeyList(first ...string) *keyList {
	l := &keyList{at: map[string]int{}}
	for _, k := range first {
		l.index(k)
	}
	return l
}

// index is k's 1-based position in the list (KEYS[i] in Lua), added when new.
func (l *keyList) index(k string) int {
	i, ok := l.at[k]
	if !ok {
		l.keys = append(l.keys, k)
		i = len(l.keys)
		l.at[k] = i
	}
	return i
}

// Entry is one recipient's ledger entry.
type Entry struct {
	Row   int
	State byte // 0 when pending
	Value string
}

// Ledger reads the ledger entries of rows (State 0 for pending rows).
func (s *Store) Ledger(ctx context.Context, id string, rows []int) ([]Entry, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(rows))
	for i, r := range rows {
		cmds[i] = pipe.HGet(ctx, bucketKey(id, r), strconv.Itoa(r))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read ledger of %s: %w", id, err)
	}
	out := make([]Entry, len(rows))
	for i, c := range cmds {
		out[i].Row = rows[i]
		if v, err := c.Result(); err == nil && v != "" {
			out[i].State = v[0]
			out[i].Value = v[1:]
		}
	}
	return out, nil
}

// Scan walks every ledger entry of a campaign, one bucket at a time. Rows
// without an entry are pending and not visited.
func (s *Store) Scan(ctx context.Context, id string, fn func(Entry) error) error {
	maxRow, err := s.rdb.HGet(ctx, campaignKey(id), "maxrow").Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("scan ledger of %s: %w", id, err)
	}
	for b := 0; b <= maxRow/bucketSize; b++ {
		m, err := s.rdb.HGetAll(ctx, bucketKey(id, b*bucketSize)).Result()
		if err != nil {
			return fmt.Errorf("scan ledger of %s: %w", id, err)
		}
		for k, v := range m {
			row, _ := strconv.Atoi(k)
			e := Entry{Row: row}
			if v != "" {
				e.State, e.Value = v[0], v[1:]
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}
