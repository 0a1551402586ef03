package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// ReportRow is one recipient's final state, as fanout report lists it.
type ReportRow struct {
	// Row is the recipient's record number in the campaign's file.
	Row int
	// To is the recipient's address when the store knows it (the retry
	// source keeps those of failed recipients); "" otherwise.
	To string
	// State names the ledger state: sent (accepted, no final report yet),
	// delivered, undelivered, read, dlr_expired, failed, unknown, skipped,
	// or, while the campaign runs, claimed or sending.
	State string
	// ProviderID is OneRoute's message id of a recipient it accepted.
	ProviderID string
	// Reason is why a recipient failed, is unknown or was skipped (the
	// ledger keeps its first 59 bytes).
	Reason string
	// Retries counts the times fanout retry-failed sent it again.
	Retries int
}

// StateName names a ledger state byte for reports ("" for 0, pending).
func StateName(b byte) string {
	switch b {
	case LedgerClaimed:
		return "claimed"
	case LedgerSending:
		return "sending"
	case LedgerAccepted:
		return "sent"
	case LedgerFailed:
		return "failed"
	case LedgerUnknown:
		return "unknown"
	case LedgerSkipped:
		return "skipped"
	case LedgerDelivered:
		return "delivered"
	case LedgerUndelivered:
		return "undelivered"
	case LedgerRead:
		return "read"
	case LedgerDLRExpired:
		return "dlr_expired"
	}
	return ""
}

// Report walks every recipient of a campaign that has a ledger entry, in
// row order, one bucket of up to 100 rows at a time (three Redis round
// trips a bucket), so memory stays bounded whatever the campaign's size.
// Every row is visited once. Pending rows (no entry: not sent yet, or
// reset by a retry and not sent again yet) are not visited. It returns
// ErrNotFound for a campaign that does not exist.
func (s *Store) Report(ctx context.Context, id string, fn func([]ReportRow) error) error {
	return s.ScanOrdered(ctx, id, func(chunk []Entry) error {
		rows := make([]int, len(chunk))
		var failed []string
		for i, e := range chunk {
			rows[i] = e.Row
			if e.State == LedgerFailed {
				failed = append(failed, strconv.Itoa(e.Row))
			}
		}
		pipe := s.rdb.Pipeline()
		fields := make([]string, len(rows))
		for i, r := range rows {
			fields[i] = strconv.Itoa(r)
		}
		retried := pipe.HMGet(ctx, retriedKey(id), fields...)
		var src interface{ Val() []any }
		if len(failed) > 0 {
			src = pipe.HMGet(ctx, retrySrcKey(id), failed...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("report %s: %w", id, err)
		}
		addr := map[int]string{}
		if src != nil {
			for _, x := range src.Val() {
				if sv, ok := x.(string); ok {
					var it struct {
						Row int    `json:"r"`
						To  string `json:"to"`
					}
					if json.Unmarshal([]byte(sv), &it) == nil {
						addr[it.Row] = it.To
					}
				}
			}
		}
		out := make([]ReportRow, len(chunk))
		for i, e := range chunk {
			r := ReportRow{Row: e.Row, To: addr[e.Row], State: StateName(e.State)}
			switch e.State {
			case LedgerAccepted, LedgerDelivered, LedgerUndelivered, LedgerRead, LedgerDLRExpired:
				r.ProviderID = e.Value
			case LedgerFailed, LedgerUnknown, LedgerSkipped:
				r.Reason = e.Value
			}
			if sv, ok := retried.Val()[i].(string); ok {
				r.Retries, _ = strconv.Atoi(sv)
			}
			out[i] = r
		}
		return fn(out)
	})
}
