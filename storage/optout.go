package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
)

// Opt-outs: the persistent suppression set of addresses that asked for no
// more messages (a STOP reply, an operator's `fanout suppress add`, an
// import). One hash per channel kind:
//
//	fanout:optout:sms        hash   E.164 number -> "<unix s>|<reason>"
//	fanout:optout:whatsapp   hash   E.164 number -> "<unix s>|<reason>"
//	fanout:optout:email      hash   lower-cased address -> "<unix s>|<reason>"
//	fanout:optout:push       hash   customer id or lower-cased address -> "<unix s>|<reason>"
//
// The field is the address as the dispatcher normalises recipients
// (recipients.Normalize), so a batch item's To is looked up as it is. The
// dispatcher leaves opted-out addresses out of a campaign (counted
// suppressed), and a worker skips those of a campaign already running at
// claim time (SkipOptedOut). Kept until removed.
//
// The keys carry no hash tag: a lookup touches one key, and the worker reads
// it in its own round trip before the campaign's claim script, so nothing
// crosses Redis Cluster slots.

// Opt-out channel kinds, as OptOutKind returns them.
const (
	OptOutSMS      = "sms"
	OptOutWhatsApp = "whatsapp"
	OptOutEmail    = "email"
	// OptOutPush holds push customers: customer ids and lower-cased
	// addresses, as a push campaign's recipients are normalised.
	OptOutPush = "push"
)

// OptOutKinds lists the channel kinds that keep an opt-out set.
var OptOutKinds = []string{OptOutSMS, OptOutWhatsApp, OptOutEmail, OptOutPush}

// ErrUnknownKind is an opt-out kind that is not one of OptOutKinds.
var ErrUnknownKind = errors.New("unknown opt-out channel kind (want sms, whatsapp, email or push)")

// OptOutKind is the opt-out set a campaign channel reads.
func OptOutKind(ch campaigns.Channel) string {
	switch {
	case ch == campaigns.ChannelEmail:
		return OptOutEmail
	case ch == campaigns.ChannelPush:
		return OptOutPush
	case strings.HasPrefix(string(ch), "whatsapp"):
		return OptOutWhatsApp
	default:
		return OptOutSMS
	}
}

func optOutKey(kind string) (string, error) {
	for _, k := range OptOutKinds {
		if k == kind {
			return "fanout:optout:" + kind, nil
		}
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownKind, kind)
}

// optOutChunk bounds the fields of one HMGET, HDEL or pipeline.
const optOutChunk = 1000

// OptOut is one address's entry in an opt-out set.
type OptOut struct {
	Address string
	At      time.Time
	// Reason says where it came from: "stop-word:STOP", "manual",
	// "import", ...
	Reason string
}

func optOutValue(at time.Time, reason string) string {
	if reason == "" {
		reason = "manual"
	}
	return strconv.FormatInt(at.Unix(), 10) + "|" + reason
}

func parseOptOut(addr, v string) OptOut {
	o := OptOut{Address: addr, Reason: v}
	if ts, reason, ok := strings.Cut(v, "|"); ok {
		sec, _ := strconv.ParseInt(ts, 10, 64)
		o.At, o.Reason = time.Unix(sec, 0).UTC(), reason
	}
	return o
}

// AddOptOuts adds normalised addresses to the kind's opt-out set with a
// reason (default "manual") and the time now. An address already there
// keeps its first entry. It returns how many were new. One pipelined round
// trip per 1,000 addresses.
func (s *Store) AddOptOuts(ctx context.Context, kind, reason string, now time.Time, addrs ...string) (added int, err error) {
	key, err := optOutKey(kind)
	if err != nil {
		return 0, err
	}
	v := optOutValue(now, reason)
	for start := 0; start < len(addrs); start += optOutChunk {
		part := addrs[start:min(start+optOutChunk, len(addrs))]
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.BoolCmd, 0, len(part))
		for _, a := range part {
			if a != "" {
				cmds = append(cmds, pipe.HSetNX(ctx, key, a, v))
			}
		}
		if len(cmds) == 0 {
			continue
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return added, fmt.Errorf("add %d opt-outs (%s): %w", len(part), kind, err)
		}
		for _, c := range cmds {
			if c.Val() {
				added++
			}
		}
	}
	return added, nil
}

// RemoveOptOuts takes addresses out of the kind's opt-out set and returns
// how many were there.
func (s *Store) RemoveOptOuts(ctx context.Context, kind string, addrs ...string) (removed int, err error) {
	key, err := optOutKey(kind)
	if err != nil {
		return 0, err
	}
	for start := 0; start < len(addrs); start += optOutChunk {
		part := addrs[start:min(start+optOutChunk, len(addrs))]
		n, err := s.rdb.HDel(ctx, key, part...).Result()
		if err != nil {
			return removed, fmt.Errorf("remove %d opt-outs (%s): %w", len(part), kind, err)
		}
		removed += int(n)
	}
	return removed, nil
}

// OptedOut looks addresses up in the kind's opt-out set: one entry per
// address, nil when it has not opted out. One HMGET per 1,000 addresses.
func (s *Store) OptedOut(ctx context.Context, kind string, addrs []string) ([]*OptOut, error) {
	key, err := optOutKey(kind)
	if err != nil {
		return nil, err
	}
	out := make([]*OptOut, len(addrs))
	for start := 0; start < len(addrs); start += optOutChunk {
		part := addrs[start:min(start+optOutChunk, len(addrs))]
		vals, err := s.rdb.HMGet(ctx, key, part...).Result()
		if err != nil {
			return nil, fmt.Errorf("read %d opt-outs (%s): %w", len(part), kind, err)
		}
		for i, v := range vals {
			if sv, ok := v.(string); ok {
				o := parseOptOut(part[i], sv)
				out[start+i] = &o
			}
		}
	}
	return out, nil
}

// ListOptOuts calls fn for every entry of the kind's opt-out set, in no
// particular order (HSCAN: an entry added or removed meanwhile may be
// visited or not, and one may be visited twice). An error from fn stops
// the walk and is returned.
func (s *Store) ListOptOuts(ctx context.Context, kind string, fn func(OptOut) error) error {
	key, err := optOutKey(kind)
	if err != nil {
		return err
	}
	it := s.rdb.HScan(ctx, key, 0, "", optOutChunk).Iterator()
	for it.Next(ctx) {
		field := it.Val()
		if !it.Next(ctx) {
			break
		}
		if err := fn(parseOptOut(field, it.Val())); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list opt-outs (%s): %w", kind, err)
	}
	return nil
}

// CountOptOuts is the size of the kind's opt-out set.
func (s *Store) CountOptOuts(ctx context.Context, kind string) (int64, error) {
	key, err := optOutKey(kind)
	if err != nil {
		return 0, err
	}
	n, err := s.rdb.HLen(ctx, key).Result()
	if err != nil {
		return 0, fmt.Errorf("count opt-outs (%s): %w", kind, err)
	}
	return n, nil
}

// OptedOutReason is the ledger reason of a recipient skipped because its
// address opted out: "opted out: " and the opt-out's reason.
func OptedOutReason(o OptOut) string { return "opted out: " + o.Reason }

// SkipOptedOut settles rows of a running campaign whose recipients opted
// out as skipped, with reasons[i] (OptedOutReason) as the ledger value, and
// counts them in the campaign's skipped and opted_out counters. Only rows
// pending or claimed (by anyone: the owner's stamp then fails, so nothing
// is sent) change; a row whose request started, or that is final, is left
// as it is. It returns how many rows it settled; nothing changes unless the
// campaign is dispatching, running or sent.
func (s *Store) SkipOptedOut(ctx context.Context, id string, rows []int, reasons []string) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	keys, args := ledgerArgs(id, rows, reasons)
	n, err := skipOptedOutScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("skip %d opted-out rows of %s: %w", len(rows), id, err)
	}
	return n, nil
}
