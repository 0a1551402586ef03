package sandbox

import (
	"hash/maphash"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/fanoutdev/fanout/internal/jsonstr"
)

// isoTime formats a time as OneRoute does: UTC with milliseconds.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// normalPhone strips a leading '+' and formatting (spaces, '-', '.', '(',
// ')') and accepts 8 to 15 digits.
func normalPhone(p string) (string, bool) {
	if len(p) > 0 && p[0] == '+' {
		p = p[1:]
	}
	clean := true
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < '0' || c > '9' {
			clean = false
			break
		}
	}
	if !clean {
		b := make([]byte, 0, len(p))
		for i := 0; i < len(p); i++ {
			switch c := p[i]; {
			case c >= '0' && c <= '9':
				b = append(b, c)
			case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
			default:
				return p, false
			}
		}
		p = string(b)
	}
	return p, len(p) >= 8 && len(p) <= 15
}

// smsUnits is the number of SMS parts: 160 GSM-7 or 70 UCS-2 characters.
func smsUnits(msg string) int {
	n, per := 0, 160
	for _, r := range msg {
		n++
		if r > 127 {
			per = 70
		}
	}
	if n == 0 {
		return 1
	}
	return (n + per - 1) / per
}

type smsRequest struct {
	Message     *string  `json:"message"`
	Recipients  []string `json:"recipients"`
	Sender      string   `json:"sender"`
	CallbackURL string   `json:"callbackUrl"`
}

// validate returns the Joi-style error of a send body, or "".
func (q *smsRequest) validate() string {
	switch {
	case q.Message == nil:
		return required("message")
	case *q.Message == "":
		return notEmpty("message")
	case q.Recipients == nil:
		return required("recipients")
	case len(q.Recipients) == 0:
		return `"recipients" must contain at least 1 items`
	case len(q.Recipients) > 1000:
		return `"recipients" must contain less than or equal to 1000 items`
	case utf8.RuneCountInString(*q.Message) > 1600:
		return `"message" length must be less than or equal to 1600 characters long`
	}
	return ""
}

func (s *Server) sendSMS(w http.ResponseWriter, r *http.Request) {
	ch, found := channelByID(r.PathValue("id"))
	if !found || ch.Medium != "SMS" {
		fail(w, http.StatusNotFound, "Channel not found")
		return
	}
	s.smsSend(w, r, routeChannel, ch.Identifier, "data")
}

// sendOTPSMS is POST /api/public/sms: the OTP route, no channel, the
// answer in "body".
func (s *Server) sendOTPSMS(w http.ResponseWriter, r *http.Request) {
	s.smsSend(w, r, routeOTP, otpSender, "body")
}

// otpSender is the sender ID of the OTP route.
const otpSender = "OneRoute OTP"

// smsSend reads and validates a Send SMS body, taking the allocation-free
// parser when the body has the usual shape and encoding/json otherwise.
func (s *Server) smsSend(w http.ResponseWriter, r *http.Request, route uint8, from, key string) {
	bp, okRead := readBody(w, r)
	if !okRead {
		return
	}
	defer putBuf(bp)
	f := fastPool.Get().(*fastSMS)
	defer func() { f.reset(); fastPool.Put(f) }()
	if !f.parse(*bp) {
		var q smsRequest
		if !decodeBytes(w, *bp, &q) {
			return
		}
		f.reset()
		if q.Message != nil {
			f.message, f.hasMessage = []byte(*q.Message), true
		}
		if q.Recipients != nil {
			f.hasRecipient = true
			for _, to := range q.Recipients {
				f.recipients = append(f.recipients, []byte(to))
			}
		}
		if q.Sender != "" {
			f.sender = []byte(q.Sender)
		}
	}
	if msg := f.validate(); msg != "" {
		fail(w, http.StatusBadRequest, msg)
		return
	}
	sender := f.sender
	if route != routeChannel || len(sender) == 0 {
		sender = []byte(from)
	}
	s.acceptSMS(w, route, sender, f.message, f.recipients, key)
}

// acceptSMS stores and counts one text to many recipients and answers with
// one {status, response} per recipient, under the payload key.
func (s *Server) acceptSMS(w http.ResponseWriter, route uint8, from, text []byte, recipients [][]byte, key string) {
	st := s.state()
	now := s.opts.Now().UnixNano()
	units := uint16(min(smsUnitsBytes(text), 65535))
	var stack [8]phoneNum
	valid := stack[:0]
	var bad uint64 // bit i: recipient i is invalid (first 64)
	var badMore []bool
	textHash := maphash.Bytes(s.seed, text)
	for i, to := range recipients {
		p, ok := parsePhone(to)
		if !ok {
			if i < 64 {
				bad |= 1 << i
			} else {
				if badMore == nil {
					badMore = make([]bool, len(recipients))
				}
				badMore[i] = true
			}
			continue
		}
		valid = append(valid, p)
		s.recordSMS(st, p, textHash)
	}
	first := st.sms.add(route, from, text, now, units, valid)

	bp := getBuf()
	b := append((*bp)[:0], `{"`...)
	b = append(b, key...)
	b = append(b, `":[`...)
	seq := first
	for i := range recipients {
		if i > 0 {
			b = append(b, ',')
		}
		if (i < 64 && bad&(1<<i) != 0) || (i >= 64 && badMore != nil && badMore[i]) {
			b = append(b, `{"status":"failed","response":"Invalid number"}`...)
			continue
		}
		b = append(b, `{"status":"success","response":"`...)
		b = appendSMSID(b, seq)
		b = append(b, `"}`...)
		seq++
	}
	b = append(b, `],"message":"SMS processed successfully","success":true}`+"\n"...)
	writeRaw(w, http.StatusOK, b)
	*bp = b
	putBuf(bp)

	if s.hooks.enabled() {
		fromS, textS := string(from), string(text)
		for i, p := range valid {
			if p.n%10 == 9 {
				continue // stays pending: no final report
			}
			m := smsMsg{smsRec: smsRec{seq: first + uint64(i), to: p.n, toLen: p.len, created: now, units: units, route: route}, text: textS, from: fromS}
			s.hooks.schedule(max(s.opts.DLRDelay, 0), func() any { return s.dlrEvent(&m) })
		}
	}
}

// smsUnitsBytes is smsUnits of a byte slice.
func smsUnitsBytes(msg []byte) int {
	n, per := 0, 160
	for i := 0; i < len(msg); {
		c := msg[i]
		if c < utf8.RuneSelf {
			i++
		} else {
			_, size := utf8.DecodeRune(msg[i:])
			i += size
			per = 70
		}
		n++
	}
	if n == 0 {
		return 1
	}
	return (n + per - 1) / per
}

// smsView is an SMS as the message list and the DLR show it.
type smsView struct {
	ID            string  `json:"id"`
	ExternalID    string  `json:"externalId"`
	Status        string  `json:"status"`
	Reason        string  `json:"reason"`
	From          string  `json:"from"`
	To            string  `json:"to"`
	Message       string  `json:"message,omitempty"`
	Units         int     `json:"units"`
	DeliveredTime *string `json:"delivered_time"`
	CreatedAt     string  `json:"createdAt"`
	UpdatedAt     string  `json:"updatedAt"`
}

func (s *Server) smsView(m *smsMsg, now time.Time, withText bool) smsView {
	st, reason, final := s.smsStatus(&m.smsRec, now)
	created := time.Unix(0, m.created)
	v := smsView{ID: smsID(m.seq), Status: st, Reason: reason, From: m.from, To: m.toString(),
		Units: int(m.units), CreatedAt: isoTime(created), UpdatedAt: isoTime(created)}
	v.ExternalID = "ext-" + v.ID[2:]
	if withText {
		v.Message = m.text
	}
	if !final.IsZero() {
		t := isoTime(final)
		v.DeliveredTime, v.UpdatedAt = &t, t
	}
	return v
}

// dlrEvent is the smsDeliveryReport object, at the message's final time.
func (s *Server) dlrEvent(m *smsMsg) map[string]any {
	at := time.Unix(0, m.created).Add(max(s.opts.DLRDelay, 0))
	return map[string]any{"event": "smsDeliveryReport", "message": nil, "conversation": s.smsView(m, at, false)}
}

func (s *Server) getDLR(w http.ResponseWriter, r *http.Request) {
	seq, okID := parseSMSID(r.PathValue("id"))
	var m smsMsg
	found := false
	if okID {
		m, found = s.state().sms.get(seq)
	}
	if !found {
		fail(w, http.StatusNotFound, "Message not found")
		return
	}
	writeJSON(w, 200, map[string]any{"event": "smsDeliveryReport", "message": nil, "conversation": s.smsView(&m, s.opts.Now(), false)})
}

// paging reads page[size] and page[number]; required says whether they
// must be present (the SMS list documents them as required).
func paging(w http.ResponseWriter, r *http.Request, required bool, defSize int) (size, num int, ok bool) {
	q := r.URL.Query()
	rawSize, rawNum := q.Get("page[size]"), q.Get("page[number]")
	if rawSize == "" && !required {
		rawSize = strconv.Itoa(defSize)
	}
	if rawNum == "" && !required {
		rawNum = "1"
	}
	size, err1 := strconv.Atoi(rawSize)
	num, err2 := strconv.Atoi(rawNum)
	switch {
	case rawSize == "":
		fail(w, 400, `"page[size]" is required`)
	case rawNum == "":
		fail(w, 400, `"page[number]" is required`)
	case err1 != nil || size < 1 || size > maxPageSize:
		fail(w, 400, `"page[size]" must be a number between 1 and `+strconv.Itoa(maxPageSize))
	case err2 != nil || num < 1:
		fail(w, 400, `"page[number]" must be greater than or equal to 1`)
	default:
		return size, num, true
	}
	return 0, 0, false
}

// smsStatusCounts counts the kept SMS by delivery status now.
func (s *Server) smsStatusCounts() map[string]int64 {
	out := map[string]int64{"pending": 0, "delivered": 0, "undelivered": 0}
	now := s.opts.Now()
	s.state().sms.each(func(m *smsRec, _ func(uint32, int) string) bool {
		st, _, _ := s.smsStatus(m, now)
		out[st]++
		return true
	})
	return out
}

// maxPageSize is the largest page[size] the sandbox serves (400 above it).
// OneRoute publishes no maximum (oneroute-api.md 1.4, 5.4); 1000 matches
// the client's oneroute.MaxPageSize and the recipients cap of a send.
const maxPageSize = 1000

// fetchSMS is Fetch SMS Messages: the channel's messages newest first (by
// acceptance), optionally by status, in pages of page[size] (at most
// maxPageSize) numbered from 1, with meta {page, size, total}. Offset paging
// as OneRoute's: a message accepted while a client pages pushes the older
// ones one place further, so a client reading newest first sees some twice
// but never misses one, unless a status filter drops messages that change
// status meanwhile.
func (s *Server) fetchSMS(w http.ResponseWriter, r *http.Request) {
	ch, found := channelByID(r.PathValue("id"))
	if !found || ch.Medium != "SMS" {
		fail(w, http.StatusNotFound, "Channel not found")
		return
	}
	size, num, okPage := paging(w, r, true, 0)
	if !okPage {
		return
	}
	q := r.URL.Query()
	status := q.Get("status")
	if status != "" && status != "pending" && status != "delivered" && status != "undelivered" {
		fail(w, 400, oneOf("status", "delivered", "pending", "undelivered"))
		return
	}
	// "to" is not in the published API; the sandbox honours it so
	// reconciliation can look a number up in one call.
	to := ""
	if raw := q.Get("to"); raw != "" {
		to, _ = normalPhone(raw)
	}
	now := s.opts.Now()
	skip := (num - 1) * size
	total := 0
	page := make([]smsMsg, 0, min(size, 100))
	var toNum phoneNum
	if to != "" {
		toNum, _ = parsePhone([]byte(to))
	}
	s.state().sms.each(func(m *smsRec, read func(uint32, int) string) bool {
		if m.route != routeChannel {
			return true
		}
		if to != "" && (m.toLen != toNum.len || m.to != toNum.n) {
			return true
		}
		if status != "" {
			if st, _, _ := s.smsStatus(m, now); st != status {
				return true
			}
		}
		if total >= skip && len(page) < size {
			page = append(page, smsMsg{smsRec: *m, text: read(m.textOff, int(m.textLen)), from: read(m.fromOff, int(m.fromLen))})
		}
		total++
		return true
	})
	// json.Marshal of {"data": []smsView, "message", "meta", "success"},
	// byte for byte, without reflection: pages of up to 1,000 messages
	// are the sweep's every read.
	n := 128
	for i := range page {
		n += 330 + len(page[i].text) + len(page[i].from)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"data":[`...)
	for i := range page {
		if i > 0 {
			b = append(b, ',')
		}
		b = s.appendSMSView(b, &page[i], now)
	}
	b = append(b, `],"message":"Messages fetched successfully","meta":{"page":`...)
	b = strconv.AppendInt(b, int64(num), 10)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(size), 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, `},"success":true}`+"\n"...)
	writeRaw(w, 200, b)
}

// appendSMSView appends json.Marshal(s.smsView(m, now, true)).
func (s *Server) appendSMSView(b []byte, m *smsMsg, now time.Time) []byte {
	const layout = "2006-01-02T15:04:05.000Z"
	st, reason, final := s.smsStatus(&m.smsRec, now)
	created := time.Unix(0, m.created).UTC()
	b = append(b, `{"id":"`...)
	b = appendSMSID(b, m.seq)
	b = append(b, `","externalId":"ext-`...)
	b = appendDigits(b, m.seq, 20)
	b = append(b, `","status":`...)
	b = jsonstr.AppendHTML(b, st)
	b = append(b, `,"reason":`...)
	b = jsonstr.AppendHTML(b, reason)
	b = append(b, `,"from":`...)
	b = jsonstr.AppendHTML(b, m.from)
	b = append(b, `,"to":"`...)
	b = appendDigits(b, m.to, m.toLen)
	b = append(b, '"')
	if m.text != "" {
		b = append(b, `,"message":`...)
		b = jsonstr.AppendHTML(b, m.text)
	}
	b = append(b, `,"units":`...)
	b = strconv.AppendInt(b, int64(m.units), 10)
	updated := created
	if final.IsZero() {
		b = append(b, `,"delivered_time":null`...)
	} else {
		updated = final.UTC()
		b = append(b, `,"delivered_time":"`...)
		b = updated.AppendFormat(b, layout)
		b = append(b, '"')
	}
	b = append(b, `,"createdAt":"`...)
	b = created.AppendFormat(b, layout)
	b = append(b, `","updatedAt":"`...)
	b = updated.AppendFormat(b, layout)
	return append(b, `"}`...)
}
