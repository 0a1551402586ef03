package storage

import "strconv"

// The key space. Every Redis key fanout writes is listed here; the keys of
// campaigns are built only by the functions below. Key names are data in
// users' Redis: never rename one.
//
// Every key of one campaign carries the hash tag {id}, so the scripts that
// touch several of them run on one Redis Cluster slot. Only the
// delivery-report keys (:x:<n> and :sw) have a TTL; "kept" means until an
// operator deletes it.
//
// Campaigns (store.go, ledger.go):
//
//	fanout:campaigns      zset    campaign ids scored by creation time (unix s).
//	                              Written by Create, read by List. Kept.
//	fanout:{id}           hash    the campaign: spec (JSON), digest, name,
//	                              channel, dlr, state, reason, counters (total,
//	                              batches, sent, failed, unknown, skipped,
//	                              delivered, undelivered, dlr_expired, read,
//	                              opted_out), retries (rounds of ResetFailed),
//	                              the dispatcher's counts (rows, invalid,
//	                              duplicates, suppressed), dispatched, maxrow
//	                              and times (created_at, started_at,
//	                              settled_at, updated_at, finished_at, unix
//	                              ms). Created by Create, changed by every
//	                              script. Kept. Also next_opening (unix ms):
//	                              the earliest opening of work waiting for
//	                              its send window, by NoteOpening
//	                              (schedule.go).
//	fanout:{id}:b         hash    batch seq -> recipients, one field per batch
//	                              recorded by AddBatch, so totals count once.
//	                              Kept.
//	fanout:{id}:why       hash    failure reason -> failed and unknown
//	                              recipients (at most 50 reasons, then "other
//	                              reasons"). Written by Record. Kept.
//	fanout:{id}:l:<n>     hash    the send ledger of rows n*100 to n*100+99:
//	                              row -> state byte + value (see LedgerClaimed
//	                              and the other Ledger* bytes). Written by
//	                              Claim, Stamp and Record. Kept.
//
// Delivery reports (index.go), for SMS campaigns with delivery reports:
//
//	fanout:{id}:x:<n>     hash    the provider-id index, bucket n of 1024
//	                              (FNV-1a of the id mod 1024): OneRoute
//	                              message id -> row, for every accepted SMS
//	                              still awaiting its final report. Written
//	                              by Record (mode send, state accepted) in
//	                              the script that records the row; entries
//	                              removed by Record (mode dlr). Read by
//	                              RowsOf, Awaited and Settle (the dlr:sweep
//	                              task, the webhook applier).
//	                              Expires IndexTTL (default 25h, set above
//	                              FANOUT_DLR_MAX_AGE) after its last write.
//	fanout:{id}:sw        hash    the dlr:sweep task's memory: floor,
//	                              fresh_at, latency_ms, idle, straggle_at,
//	                              straggles, page_size, and the passes,
//	                              pages (list requests) and lookups
//	                              (per-message report requests) it made.
//	                              Written by SaveSweep; expires IndexTTL
//	                              after its last write.
//
// A dispatch's progress (checkpoint.go), written by the dispatcher:
//
//	fanout:{id}:ckpt      hash    seq, horizon, row, rh (row hash), rows,
//	                              valid, invalid, dup, supp, done: see
//	                              Checkpoint. Kept (done=1 once expanded).
//	fanout:{id}:seen      string  8-byte little-endian hashes of the valid
//	                              recipients before the checkpoint. Deleted
//	                              by the done checkpoint.
//
// A detached dispatch (upload.go, expand.go), written by fanout dispatch
// --detach and its campaign:expand tasks:
//
//	fanout:{id}:src       hash    the upload's index: chunks, bytes and the
//	                              meta given to NewUpload. Deleted by
//	                              DeleteUpload once expanded (or the campaign
//	                              is cancelled or completed); replaced by a
//	                              new upload.
//	fanout:{id}:src:<n>   string  chunk n of the recipient file, 1 MiB before
//	                              gzip. Deleted by DeleteUpload.
//	fanout:{id}:sup       string  8-byte little-endian hashes of the
//	                              suppressed addresses (SaveSuppressed).
//	                              Deleted by DeleteUpload.
//	fanout:{id}:expand    hash    gen: the current campaign:expand
//	                              generation (ClaimGeneration). Kept.
//
// Batch copies and the audit (audit.go), written by worker.KeepCopies
// before each batch task is enqueued, read by worker.Auditor:
//
//	fanout:{id}:copy      hash    batch key (tasks.BatchKey: b12, b12r1-<hash>)
//	                              or poll key (dlr:<key>:<attempt>) -> its
//	                              rows (varint deltas) and its task payload
//	                              (gzip). About 23 bytes per
//	                              recipient. A field is dropped once its rows
//	                              are final or held by a live task; the key
//	                              once the campaign is completed, or
//	                              cancelled and settled.
//	fanout:audit          set     campaign ids that have copies. Kept while
//	                              they have.
//	fanout:audit:lead     string  the worker leading the audit; expires 3
//	                              audit intervals after its last renewal.
//
// WhatsApp session windows (sessions.go), written by the webhook
// receiver's newMessage events and fanout sessions import:
//
//	fanout:wa:in:<business>:<yyyymmdd>:<n>
//	                      hash    customer number (digits) -> unix seconds of
//	                              their last message to the business number
//	                              (digits) that UTC day; bucket n of 256
//	                              (FNV-1a of the customer). Written by
//	                              RecordInbound (keeps the latest), read by
//	                              LastInbound. Expires a day after its day.
//
// Opt-outs (optout.go), the persistent suppression set per channel kind,
// written by the webhook receiver's STOP replies (worker.OptOuts) and
// fanout suppress add|remove|import; read by the dispatcher (left out,
// counted suppressed) and by workers at claim time (SkipOptedOut):
//
//	fanout:optout:sms     hash    E.164 number -> "<unix s>|<reason>"
//	fanout:optout:whatsapp
//	                      hash    the same, for WhatsApp campaigns.
//	fanout:optout:email   hash    lower-cased address -> "<unix s>|<reason>".
//	                              About 83 bytes per entry. Kept.
//
// Webhook events (hooks.go), written by the webhook receiver and its
// applier: fanout:{hooks}:d:<digest>, fanout:{hooks}:s (stream),
// fanout:{hooks}:live, fanout:{hooks}:later, and per campaign
// fanout:{id}:hk; hooks.go describes each.
//
// Keys of other owners, listed so that this is the whole picture:
//
//	fanout:rl:{<sender>}:s   string  ratelimit: per-second GCRA state (µs).
//	fanout:rl:{<sender>}:m   hash    ratelimit: per-minute window buckets,
//	                                 plus t (total) and o (oldest bucket).
//	fanout:rl:{<sender>}:d   hash    ratelimit: per-day window, same layout.
//	fanout:rl:{<sender>}:b   string  ratelimit: blocked until (µs), set on
//	                                 a 429.
//	asynq:{<queue>}:...      various asynq's queues, tasks and servers.
//
// The rate limiter's keys are built in ratelimit/redis.go (the prefix
// fanout:rl: is ratelimit.DefaultPrefix, replaced by ratelimit.WithPrefix);
// <sender> is campaigns.Batch.Sender: sms:<channel_id>,
// whatsapp:<from> or email:<channel_id>. Every one expires on its own once
// it no longer matters: s and b a second after the time they hold, m and d
// a window and two buckets after their last permit. asynq's keys are asynq's; the tasks
// package names queues and task ids.

// bucketSize is how many recipients share one ledger hash. Small hashes stay
// in Redis' compact listpack encoding (up to 128 entries of up to 64 bytes).
const bucketSize = 100

const indexKey = "fanout:campaigns"

func campaignKey(id string) string { return "fanout:{" + id + "}" }
func batchesKey(id string) string  { return "fanout:{" + id + "}:b" }
func whyKey(id string) string      { return "fanout:{" + id + "}:why" }
func bucketKey(id string, row int) string {
	return "fanout:{" + id + "}:l:" + strconv.Itoa(row/bucketSize)
}

func ckptKey(id string) string { return "fanout:{" + id + "}:ckpt" }
func seenKey(id string) string { return "fanout:{" + id + "}:seen" }

func srcKey(id string) string          { return "fanout:{" + id + "}:src" }
func chunkKey(id string, n int) string { return srcKey(id) + ":" + strconv.Itoa(n) }
func supKey(id string) string          { return "fanout:{" + id + "}:sup" }
func genKey(id string) string          { return "fanout:{" + id + "}:expand" }

// Retrying failed recipients (retry.go), for fanout retry-failed:
//
//	fanout:{id}:rf        hash    the retry source: "batch" -> the common
//	                              part of the campaign's batches (JSON), row
//	                              -> the item (address and content, JSON) of
//	                              every row recorded failed. Written by the
//	                              workers (SaveRetrySource) before they record
//	                              rows failed; read by RetrySource. Kept.
//	fanout:{id}:rt        hash    row -> how many times ResetFailed moved it
//	                              from failed back to pending. Kept.
func retrySrcKey(id string) string { return "fanout:{" + id + "}:rf" }
func retriedKey(id string) string  { return "fanout:{" + id + "}:rt" }

// routeKey is a whatsapp_session campaign's routes (sessions_route.go):
//
//	fanout:{id}:route     hash    row -> "s" (session message) or "t"
//	                              (fallback template) before its send; "S"
//	                              or "T" once accepted and counted in the
//	                              campaign's session_sent or template_sent.
//	                              Written by SetRoute and CountRoutes. Kept.
func routeKey(id string) string { return "fanout:{" + id + "}:route" }

// OneRoute campaigns of a whatsapp_campaign (wacampaign.go), written by
// the workers after each accepted POST /api/public/whatsapp/campaign:
//
//	fanout:{id}:orc       hash    OneRoute campaign_id -> "<batch key>|<unix
//	                              ms of the send>|<messages>". Read by
//	                              OneRouteCampaigns (fanout status --json
//	                              oneroute_campaign_ids). Kept.
func orcKey(id string) string { return "fanout:{" + id + "}:orc" }
