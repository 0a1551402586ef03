package sandbox

import (
	"strconv"
	"sync"
	"time"
)

// seenSet remembers message hashes for duplicate detection. It is sharded
// to keep the send path from serialising on one lock, and generational to
// bound memory: each shard keeps a current and a previous map, and when the
// current one fills the previous is dropped. It remembers at least the last
// window hashes, and at most twice that.
type seenSet struct {
	shards [seenShards]seenShard
	limit  int // per shard and generation
}

const seenShards = 64

type seenShard struct {
	mu        sync.Mutex
	cur, prev map[uint64]struct{}
	_         [40]byte // keep shards on separate cache lines
}

func newSeenSet(window int) *seenSet {
	s := &seenSet{limit: max(window/seenShards, 1024)}
	for i := range s.shards {
		s.shards[i].cur = map[uint64]struct{}{}
	}
	return s
}

// add records h and reports whether it is new.
func (s *seenSet) add(h uint64) bool {
	sh := &s.shards[h%seenShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.cur[h]; ok {
		return false
	}
	if _, ok := sh.prev[h]; ok {
		sh.cur[h] = struct{}{}
		return false
	}
	if len(sh.cur) >= s.limit {
		// Sized for a whole generation: no rehashing while it fills.
		sh.prev, sh.cur = sh.cur, make(map[uint64]struct{}, s.limit)
	}
	sh.cur[h] = struct{}{}
	return true
}

// Route of a stored SMS: a channel, or OneRoute's OTP route.
const (
	routeChannel uint8 = iota // SMSChannelID
	routeOTP                  // POST /api/public/sms and OneOTP
)

// smsRec is a stored SMS, kept compact and free of pointers (so the
// garbage collector never scans the store): the id is the sequence number,
// the recipient is its digits as a number, and the texts live in the
// chunk's byte arena.
type smsRec struct {
	seq              uint64
	to               uint64 // the recipient's digits
	created          int64  // Unix nanoseconds
	textOff, textLen uint32 // in the chunk's arena
	fromOff          uint32
	fromLen          uint16
	units            uint16
	toLen            uint8 // digits in to, for leading zeros
	route            uint8
}

func (m *smsRec) toString() string {
	var b [20]byte
	return string(appendDigits(b[:0], m.to, m.toLen))
}

// appendDigits appends n zero-padded to width digits.
func appendDigits(b []byte, n uint64, width uint8) []byte {
	var d [20]byte
	digits := strconv.AppendUint(d[:0], n, 10)
	for range int(width) - len(digits) {
		b = append(b, '0')
	}
	return append(b, digits...)
}

func (m *smsRec) lastDigit() byte { return byte('0' + m.to%10) }

// smsChunk holds consecutive messages and the bytes of their texts.
type smsChunk struct {
	recs  []smsRec
	arena []byte
}

func (c *smsChunk) str(off uint32, n int) string { return string(c.arena[off : int(off)+n]) }

// smsMsg is a stored SMS read out of the store.
type smsMsg struct {
	smsRec
	text, from string
}

// smsStore keeps the last messages in a ring of chunks indexed by sequence
// number, so a message id maps to its slot without a map and memory stays
// bounded: when the ring wraps, the oldest chunk is reused whole.
type smsStore struct {
	mu        sync.RWMutex
	chunks    []*smsChunk // allocated as needed
	chunkBits uint
	last      uint64 // last sequence issued
}

// newSMSStore keeps at least about limit messages (the ring holds four or
// more chunks, one of which is being refilled).
func newSMSStore(limit int) *smsStore {
	bits := uint(16)
	for bits > 4 && (1<<bits)*4 > limit {
		bits--
	}
	n := (limit + (1 << bits) - 1) >> bits
	return &smsStore{chunks: make([]*smsChunk, max(n+1, 4)), chunkBits: bits}
}

func (st *smsStore) locate(seq uint64) (*smsChunk, uint64) {
	i := ((seq - 1) >> st.chunkBits) % uint64(len(st.chunks))
	return st.chunks[i], (seq - 1) & (1<<st.chunkBits - 1)
}

// add stores one text from one sender to each recipient and returns the
// sequence of the first; the others follow consecutively.
func (st *smsStore) add(route uint8, from, text []byte, created int64, units uint16, to []phoneNum) uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	first := st.last + 1
	var cur *smsChunk
	var textOff, fromOff uint32
	for _, p := range to {
		st.last++
		seq := st.last
		slot := (seq - 1) & (1<<st.chunkBits - 1)
		ci := ((seq - 1) >> st.chunkBits) % uint64(len(st.chunks))
		c := st.chunks[ci]
		if c == nil {
			// 64 bytes of text a message before the arena grows.
			c = &smsChunk{recs: make([]smsRec, 0, 1<<st.chunkBits), arena: make([]byte, 0, 64<<st.chunkBits)}
			st.chunks[ci] = c
		}
		if slot == 0 { // starting the chunk afresh: forget what it held
			c.recs, c.arena = c.recs[:0], c.arena[:0]
		}
		if c != cur { // texts are written once per chunk and call
			cur = c
			textOff = uint32(len(c.arena))
			c.arena = append(c.arena, text...)
			fromOff = uint32(len(c.arena))
			c.arena = append(c.arena, from...)
		}
		c.recs = append(c.recs, smsRec{seq: seq, to: p.n, toLen: p.len, created: created, route: route, units: units,
			textOff: textOff, textLen: uint32(len(text)), fromOff: fromOff, fromLen: uint16(len(from))})
	}
	return first
}

// get returns the message with sequence seq, if it is still kept.
func (st *smsStore) get(seq uint64) (smsMsg, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if seq == 0 || seq > st.last {
		return smsMsg{}, false
	}
	c, slot := st.locate(seq)
	if c == nil || slot >= uint64(len(c.recs)) || c.recs[slot].seq != seq {
		return smsMsg{}, false
	}
	m := &c.recs[slot]
	return smsMsg{smsRec: *m, text: c.str(m.textOff, int(m.textLen)), from: c.str(m.fromOff, int(m.fromLen))}, true
}

// each calls fn on the kept messages, newest first, until fn returns false.
// fn runs under the read lock and must not call back into the store; read
// texts with read.
func (st *smsStore) each(fn func(m *smsRec, read func(off uint32, n int) string) bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	for seq := st.last; seq > 0; {
		c, slot := st.locate(seq)
		if c == nil || slot >= uint64(len(c.recs)) || c.recs[slot].seq != seq {
			return
		}
		read := c.str // one method value per chunk, not one per message
		for ; ; slot-- {
			if !fn(&c.recs[slot], read) {
				return
			}
			seq--
			if slot == 0 {
				break
			}
		}
	}
}

// smsStatus decides an SMS's delivery status by its last digit and age.
func (s *Server) smsStatus(m *smsRec, now time.Time) (status, reason string, final time.Time) {
	created := time.Unix(0, m.created)
	last := m.lastDigit()
	if last == '9' || now.Sub(created) < s.opts.DLRDelay {
		return "pending", "Message queued", time.Time{}
	}
	t := created.Add(max(s.opts.DLRDelay, 0))
	if last == '0' {
		return "undelivered", "Rejected by network", t
	}
	return "delivered", "Message delivered to handset", t
}

// smsIDPrefix and smsIDLen shape the numeric SMS ids: "47" and 20 digits.
const (
	smsIDPrefix = "47"
	smsIDLen    = 22
)

// appendSMSID appends the id of sequence seq.
func appendSMSID(b []byte, seq uint64) []byte {
	return appendDigits(append(b, smsIDPrefix...), seq, 20)
}

func smsID(seq uint64) string { return string(appendSMSID(nil, seq)) }

// parseSMSID returns the sequence of an id, or false.
func parseSMSID(id string) (uint64, bool) {
	if len(id) != smsIDLen || id[:2] != smsIDPrefix {
		return 0, false
	}
	n, err := strconv.ParseUint(id[2:], 10, 64)
	return n, err == nil && n > 0
}
