package storage

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// WhatsApp session windows. A business may send free-form session messages
// to a customer for 24 hours after the customer last wrote to it (OneRoute's
// FAQ, oneroute-api.md §3.6). fanout keeps the time of each customer's last
// inbound message per business number, from newMessage webhooks and from
// `fanout sessions import`, so a whatsapp_session campaign can choose the
// session message or the template per recipient.
//
// Layout: one set of hashes per business number and UTC day of the inbound
// message, split into sessionBuckets by a hash of the customer's number:
//
//	fanout:wa:in:<business>:<yyyymmdd>:<n>   hash   customer -> unix seconds
//
// Each key expires a day after its day ends, so nothing older than the
// window outlives it by more than a day and no sweeper is needed; a lookup
// reads today's and yesterday's bucket of each customer (one pipelined round
// trip for a batch). Entries are ~30 bytes in listpack-encoded buckets.
//
// The keys carry no hash tag: every command touches one key, so they spread
// over a Redis Cluster.

// SessionWindow is how long after a customer's last message a business may
// send session messages.
const SessionWindow = 24 * time.Hour

// sessionBuckets splits a business's customers of one day. Never change it:
// existing keys are found by it.
const sessionBuckets = 256

func sessionKey(business string, day time.Time, customer string) string {
	h := fnv.New32a()
	h.Write([]byte(customer))
	return "fanout:wa:in:" + business + ":" + day.UTC().Format("20060102") + ":" + strconv.Itoa(int(h.Sum32()%sessionBuckets))
}

// digits keeps a phone number's digits: "+234 803…" and "234803…" are one
// number in the session keys.
func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// recordInboundScript keeps the latest time: webhooks may arrive out of
// order, and an import must not move a newer time back. It is sent by
// source (EVAL) in a pipeline: EVALSHA there cannot fall back on NOSCRIPT,
// and the script is small.
const recordInboundScript = `
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1`

// Inbound is a customer's message to a business number at a time.
type Inbound struct {
	Business string // the business WhatsApp number
	Customer string // the customer's number
	At       time.Time
}

// RecordInbound records customers' inbound messages, keeping each
// customer's latest. Times older than the window are ignored (they open
// nothing). One pipelined round trip.
func (s *Store) RecordInbound(ctx context.Context, now time.Time, ins ...Inbound) (recorded int, err error) {
	pipe := s.rdb.Pipeline()
	for _, in := range ins {
		b, c := digits(in.Business), digits(in.Customer)
		if b == "" || c == "" {
			return 0, fmt.Errorf("record inbound: business %q and customer %q must be phone numbers", in.Business, in.Customer)
		}
		if !in.At.After(now.Add(-SessionWindow)) {
			continue
		}
		if in.At.After(now.Add(time.Minute)) {
			in.At = now // a clock ahead of ours opens no more than now does
		}
		dayEnd := time.Date(in.At.UTC().Year(), in.At.UTC().Month(), in.At.UTC().Day()+1, 0, 0, 0, 0, time.UTC)
		pipe.Eval(ctx, recordInboundScript, []string{sessionKey(b, in.At, c)}, c, in.At.Unix(), dayEnd.Add(SessionWindow).UnixMilli())
		recorded++
	}
	if recorded == 0 {
		return 0, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("record inbound messages: %w", err)
	}
	return recorded, nil
}

// LastInbound returns when each customer last wrote to the business number
// within the window ending at now (zero time: not within it). One
// pipelined round trip.
func (s *Store) LastInbound(ctx context.Context, business string, customers []string, now time.Time) ([]time.Time, error) {
	b := digits(business)
	pipe := s.rdb.Pipeline()
	cmds := make([][2]*redis.StringCmd, len(customers))
	for i, cu := range customers {
		c := digits(cu)
		cmds[i][0] = pipe.HGet(ctx, sessionKey(b, now, c), c)
		cmds[i][1] = pipe.HGet(ctx, sessionKey(b, now.Add(-SessionWindow), c), c)
	}
	if len(customers) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, fmt.Errorf("read session windows: %w", err)
		}
	}
	out := make([]time.Time, len(customers))
	for i := range customers {
		var last int64
		for _, cmd := range cmds[i] {
			if v, err := cmd.Int64(); err == nil && v > last {
				last = v
			}
		}
		if t := time.Unix(last, 0); last > 0 && t.After(now.Add(-SessionWindow)) {
			out[i] = t
		}
	}
	return out, nil
}
