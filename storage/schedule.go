package storage

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
)

var (
	//go:embed opening.lua
	openingLua    string
	openingScript = redis.NewScript(openingLua)
)

// NoteOpening records that work of campaign id waits for its send window
// until at (now is the caller's clock): the campaign's next_opening becomes
// at, unless it holds an earlier opening still to come. Progress shows it
// while it is ahead, and the audit does not count a campaign waiting for
// it as stalled.
func (s *Store) NoteOpening(ctx context.Context, id string, at, now time.Time) error {
	n, err := openingScript.Run(ctx, s.rdb, []string{campaignKey(id)}, at.UnixMilli(), now.UnixMilli()).Int()
	if err != nil {
		return fmt.Errorf("note next opening of %s: %w", id, err)
	}
	if n < 0 {
		return fmt.Errorf("campaign %s: %w", id, ErrNotFound)
	}
	return nil
}

// nextOpening is when a campaign that is not final next sends, if that is
// after now: the earlier of the opening workers noted (NoteOpening) and the
// one its stored spec's start_at and window give; nil when it may send now.
func nextOpening(m map[string]string, p campaigns.Progress, now time.Time) *time.Time {
	if p.SendingOver() || (p.Dispatched && p.Pending <= 0) {
		return nil
	}
	var best time.Time
	if ms, _ := strconv.ParseInt(m["next_opening"], 10, 64); ms > now.UnixMilli() {
		best = time.UnixMilli(ms)
	}
	var spec struct {
		Schedule *campaigns.Schedule `json:"schedule"`
	}
	if json.Unmarshal([]byte(m["spec"]), &spec) == nil && spec.Schedule != nil && spec.Schedule.Scheduled() {
		sc := *spec.Schedule
		if sc.TimezoneColumn != "" || sc.TimezoneFromPhone {
			// Recipients read the window in their own zones: only the
			// workers know which wait, and they noted it.
			sc.Window = nil
		}
		if t := (campaigns.Spec{Schedule: &sc}).NextOpening(now); t.After(now) && (best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	if best.IsZero() {
		return nil
	}
	best = best.UTC()
	return &best
}
