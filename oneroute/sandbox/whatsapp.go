package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// newUUID returns a random UUID v4, like OneRoute's internal ids.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

const urlSafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// waID returns a WhatsApp message id shaped like the documented ones.
func waID() string {
	var b [21]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = urlSafe[int(b[i])%len(urlSafe)]
	}
	return "gBGHI0k" + string(b[:])
}

// Final outcomes of a WhatsApp message (or email), decided at acceptance
// by the recipient's last digit (outcomeOf).
const (
	outDelivered    byte = 'd' // delivered DLRDelay after processing, never read (1, 8)
	outRead         byte = 'r' // delivered, then read ReadDelay later (2 to 7)
	outUndelivered  byte = 'f' // sent, then failed DLRDelay after processing (0)
	outStaysSent    byte = 's' // sent, never delivered (9)
	outRejected     byte = 'x' // failed at processing (invalid number, wrong parameters)
	undeliverableWA      = "Message undeliverable"
	bouncedEmail         = "Bounced by the receiving server"
)

// Media of a log row.
const (
	logWhatsApp byte = iota
	logEmail
)

// logRow is one WhatsApp message (or email) in the logs. Its status is a
// function of time: pending until processAt, then sent or failed, then its
// final status DLRDelay later, and read ReadDelay after delivery.
type logRow struct {
	seq                        uint64 // order of acceptance, for the before cursor
	id, campaignID, identifier string
	from, to, template         string
	wamid, reason              string
	created, processAt         time.Time
	outcome                    byte
	medium                     byte
	evicted                    bool
}

// outcomeOf decides a message's fate by the last digit of its recipient
// (for an email, the last digit of the address' local part; none counts as
// 5): 0 failed, 9 stays sent for ever, 1 and 8 delivered and never read, 2
// to 7 delivered and then read (WhatsApp only: emails are delivered).
func outcomeOf(to string) byte {
	d := byte('5')
	local := to
	if at := strings.LastIndexByte(to, '@'); at >= 0 {
		local = to[:at]
	}
	for i := len(local) - 1; i >= 0; i-- {
		if local[i] >= '0' && local[i] <= '9' {
			d = local[i]
			break
		}
	}
	switch d {
	case '0':
		return outUndelivered
	case '9':
		return outStaysSent
	case '1', '8':
		return outDelivered
	}
	return outRead
}

// rowStatus is the row's status at now, its response (message id or
// reason) and when it last changed.
func (s *Server) rowStatus(r *logRow, now time.Time) (status string, response *string, updated time.Time) {
	if now.Before(r.processAt) {
		return "pending", nil, r.created
	}
	if r.outcome == outRejected {
		return "failed", &r.reason, r.processAt
	}
	final := r.processAt.Add(max(s.opts.DLRDelay, 0))
	if r.outcome == outStaysSent || now.Before(final) {
		return "sent", &r.wamid, r.processAt
	}
	if r.outcome == outUndelivered {
		reason := undeliverableWA
		if r.medium == logEmail {
			reason = bouncedEmail
		}
		return "failed", &reason, final
	}
	if read := final.Add(max(s.opts.ReadDelay, 0)); r.outcome == outRead && !now.Before(read) {
		return "read", &r.wamid, read
	}
	return "delivered", &r.wamid, final
}

type campaignRec struct {
	id   string
	rows []*logRow
	live int
}

type conversation struct {
	id          string
	customer    string
	lastInbound time.Time
}

// waStore keeps WhatsApp log rows, campaigns and conversations, bounded:
// beyond limit rows (or conversations) the oldest are forgotten.
type waStore struct {
	mu        sync.RWMutex
	limit     int
	rows      []*logRow // ring, oldest at head once full
	head      int
	seq       uint64             // last logRow.seq given
	byID      map[string]*logRow // kept rows by id, for the before cursor
	campaigns map[string]*campaignRec
	byIdent   map[string][]*logRow
	convs     map[string]*conversation // by customer number
	convOrder []string
}

func newWAStore(limit int) *waStore {
	return &waStore{limit: limit, campaigns: map[string]*campaignRec{}, byIdent: map[string][]*logRow{}, byID: map[string]*logRow{},
		convs: map[string]*conversation{}}
}

// add stores rows (of one campaign, when campaign is set).
func (st *waStore) add(campaign *campaignRec, rows []*logRow) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if campaign != nil {
		st.campaigns[campaign.id] = campaign
	}
	for _, r := range rows {
		st.seq++
		r.seq = st.seq
		st.byID[r.id] = r
		if len(st.rows) < st.limit {
			st.rows = append(st.rows, r)
		} else {
			st.evict(st.rows[st.head])
			st.rows[st.head] = r
			st.head = (st.head + 1) % st.limit
		}
		if r.identifier != "" {
			st.byIdent[r.identifier] = append(st.byIdent[r.identifier], r)
		}
	}
}

func (st *waStore) evict(r *logRow) {
	r.evicted = true
	delete(st.byID, r.id)
	if r.identifier != "" {
		list := st.byIdent[r.identifier]
		for i, x := range list {
			if x == r {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(st.byIdent, r.identifier)
		} else {
			st.byIdent[r.identifier] = list
		}
	}
	if c := st.campaigns[r.campaignID]; c != nil {
		if c.live--; c.live <= 0 {
			delete(st.campaigns, r.campaignID)
		}
	}
}

// inbound records a customer's message and returns their conversation.
func (st *waStore) inbound(customer string, now time.Time) *conversation {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := st.convs[customer]
	if c == nil {
		if len(st.convOrder) >= st.limit {
			delete(st.convs, st.convOrder[0])
			st.convOrder = st.convOrder[1:]
		}
		c = &conversation{id: newUUID(), customer: customer}
		st.convs[customer] = c
		st.convOrder = append(st.convOrder, customer)
	}
	c.lastInbound = now
	cp := *c
	return &cp
}

// session returns the customer's conversation if its window is open.
func (st *waStore) session(customer string, now time.Time, window time.Duration) (conversation, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	c := st.convs[customer]
	if c == nil || now.Sub(c.lastInbound) >= window || now.Before(c.lastInbound) {
		return conversation{}, false
	}
	return *c, true
}

type templateParam struct {
	Type *string `json:"type"`
	Text *string `json:"text"`
}

type templateMessage struct {
	To       *string `json:"to"`
	Save     *bool   `json:"save"`
	Template *struct {
		Name       *string         `json:"name"`
		Language   string          `json:"language"`
		Parameters []templateParam `json:"parameters"`
		Buttons    []templateParam `json:"buttons"`
		Header     *struct {
			Type string `json:"type"`
			Link string `json:"link"`
			Text string `json:"text"`
		} `json:"header"`
	} `json:"template"`
	Metadata   json.RawMessage `json:"metadata"`
	Identifier *string         `json:"identifier"`
}

// ident is the message's identifier: its identifier field, or else a
// string "identifier" in its metadata.
func (m *templateMessage) ident() string {
	if m.Identifier != nil {
		return *m.Identifier
	}
	var md struct {
		Identifier string `json:"identifier"`
	}
	if len(m.Metadata) > 0 && json.Unmarshal(m.Metadata, &md) == nil {
		return md.Identifier
	}
	return ""
}

type templateRequest struct {
	From     *string           `json:"from"`
	Messages []templateMessage `json:"messages"`
}

// checkFrom validates the business number of a WhatsApp send.
func checkFrom(from *string) string {
	if from == nil {
		return required("from")
	}
	if p, _ := normalPhone(*from); p != WhatsAppNumber {
		return fmt.Sprintf(`"from" %s is not connected to a WhatsApp channel`, *from)
	}
	return ""
}

// validate returns the Joi-style error of a template or campaign body, or
// "". Like OneRoute's, messages name the key alone ("template" is
// required), not its path.
func (q *templateRequest) validate(campaign bool) string {
	if msg := checkFrom(q.From); msg != "" {
		return msg
	}
	switch {
	case q.Messages == nil:
		return required("messages")
	case len(q.Messages) == 0:
		return `"messages" must contain at least 1 items`
	case len(q.Messages) > 1000:
		return `"messages" must contain less than or equal to 1000 items`
	}
	idents := map[string]bool{}
	for i, m := range q.Messages {
		switch {
		case m.To == nil:
			return required("to")
		case *m.To == "":
			return notEmpty("to")
		case m.Template == nil:
			return required("template")
		case m.Template.Name == nil:
			return required("name")
		case *m.Template.Name == "":
			return notEmpty("name")
		case m.Template.Parameters == nil:
			return required("parameters")
		}
		for _, list := range [][]templateParam{m.Template.Parameters, m.Template.Buttons} {
			for _, p := range list {
				if p.Type == nil {
					return required("type")
				}
				if *p.Type != "text" {
					return oneOf("type", "text")
				}
				if p.Text == nil {
					return required("text")
				}
			}
		}
		if campaign && m.Identifier != nil {
			if *m.Identifier == "" {
				return notEmpty("identifier")
			}
			if idents[*m.Identifier] {
				return fmt.Sprintf(`"messages" position %d contains a duplicate value`, i)
			}
			idents[*m.Identifier] = true
		}
		t, known := templateByName(*m.Template.Name)
		if !known {
			return fmt.Sprintf("Template %s not found or not approved", *m.Template.Name)
		}
		if t.Status != "approved" {
			return fmt.Sprintf("Template %s is %s, not approved", t.Name, t.Status)
		}
	}
	return ""
}

// check decides one message: its recipient's digits, the content used for
// duplicate detection, and a failure reason when it cannot be sent.
func (m *templateMessage) check() (to, content, reason string) {
	t, _ := templateByName(*m.Template.Name)
	p, valid := normalPhone(*m.To)
	switch lang := m.Template.Language; {
	case !valid:
		return p, "", "Invalid number"
	case len(m.Template.Parameters) != t.params:
		return p, "", fmt.Sprintf("Template %s takes %d parameters, got %d", t.Name, t.params, len(m.Template.Parameters))
	case len(m.Template.Buttons) != t.buttons:
		return p, "", fmt.Sprintf("Template %s takes %d buttons, got %d", t.Name, t.buttons, len(m.Template.Buttons))
	case !sameLanguage(lang, t.Locale):
		if lang == "" {
			lang = "en"
		}
		return p, "", fmt.Sprintf("Template %s has no %s translation", t.Name, lang)
	}
	if reason := m.checkHeader(t); reason != "" {
		return p, "", reason
	}
	var b strings.Builder
	b.WriteString(t.Name)
	for _, x := range m.Template.Parameters {
		b.WriteByte(0)
		b.WriteString(*x.Text)
	}
	for _, x := range m.Template.Buttons {
		b.WriteByte(1)
		b.WriteString(*x.Text)
	}
	if h := m.Template.Header; h != nil {
		b.WriteByte(2)
		b.WriteString(h.Link)
	}
	return p, b.String(), ""
}

type result struct {
	Status   string `json:"status"`
	Response string `json:"response"`
}

func (s *Server) sendTemplate(w http.ResponseWriter, r *http.Request) {
	var q templateRequest
	if !decode(w, r, &q) {
		return
	}
	if msg := q.validate(false); msg != "" {
		fail(w, http.StatusBadRequest, msg)
		return
	}
	st := s.state()
	now := s.opts.Now()
	out := make([]result, len(q.Messages))
	rows := make([]*logRow, len(q.Messages))
	for i := range q.Messages {
		m := &q.Messages[i]
		to, content, reason := m.check()
		row := &logRow{id: newUUID(), from: WhatsAppNumber, to: to, template: *m.Template.Name, created: now, processAt: now,
			identifier: m.ident()}
		if reason != "" {
			row.outcome, row.reason = outRejected, reason
			out[i] = result{Status: "failed", Response: reason}
		} else {
			row.outcome, row.wamid = outcomeOf(to), waID()
			s.recordMessage(st, mediumWhatsApp, to, content)
			out[i] = result{Status: "success", Response: row.wamid}
		}
		rows[i] = row
	}
	st.wa.add(nil, rows)
	s.scheduleRowHooks(rows, 0)
	ok(w, "Message sent to customer", out)
}

// sendCampaign accepts a campaign and processes it CampaignDelay later:
// its rows are pending until then.
func (s *Server) sendCampaign(w http.ResponseWriter, r *http.Request) {
	var q templateRequest
	if !decode(w, r, &q) {
		return
	}
	if msg := q.validate(true); msg != "" {
		fail(w, http.StatusBadRequest, msg)
		return
	}
	st := s.state()
	now := s.opts.Now()
	delay := max(s.opts.CampaignDelay, 0)
	c := &campaignRec{id: newUUID(), rows: make([]*logRow, len(q.Messages))}
	c.live = len(c.rows)
	for i := range q.Messages {
		m := &q.Messages[i]
		to, content, reason := m.check()
		row := &logRow{id: newUUID(), campaignID: c.id, from: WhatsAppNumber, to: to, template: *m.Template.Name,
			created: now, processAt: now.Add(delay), identifier: m.ident()}
		if reason != "" {
			row.outcome, row.reason = outRejected, reason
		} else {
			row.outcome, row.wamid = outcomeOf(to), waID()
			s.recordMessage(st, mediumWhatsApp, to, content)
		}
		c.rows[i] = row
	}
	st.wa.add(c, c.rows)
	s.scheduleRowHooks(c.rows, delay)
	if s.hooks.enabled() {
		s.hooks.schedule(delay+max(s.opts.DLRDelay, 0), func() any { return s.campaignCompleted(c) })
	}
	ok(w, "Data received", map[string]string{"campaign_id": c.id})
}

// scheduleRowHooks queues the messageStatus webhooks of rows processed
// delay from now: sent (or failed) then, the final status DLRDelay later.
func (s *Server) scheduleRowHooks(rows []*logRow, delay time.Duration) {
	if !s.hooks.enabled() {
		return
	}
	final := delay + max(s.opts.DLRDelay, 0)
	for _, row := range rows {
		if row.outcome == outRejected {
			if row.identifier == "" {
				continue // nothing names it; the send's results said why
			}
			s.hooks.schedule(delay, func() any { return s.messageStatus(row, "failed", row.reason) })
			continue
		}
		s.hooks.schedule(delay, func() any { return s.messageStatus(row, "sent", "") })
		switch row.outcome {
		case outDelivered:
			s.hooks.schedule(final, func() any { return s.messageStatus(row, "delivered", "") })
		case outRead:
			s.hooks.schedule(final, func() any { return s.messageStatus(row, "delivered", "") })
			s.hooks.schedule(final+max(s.opts.ReadDelay, 0), func() any { return s.messageStatus(row, "read", "") })
		case outUndelivered:
			reason := undeliverableWA
			if row.medium == logEmail {
				reason = bouncedEmail
			}
			s.hooks.schedule(final, func() any { return s.messageStatus(row, "failed", reason) })
		}
	}
}

func (s *Server) messageStatus(row *logRow, status, reason string) map[string]any {
	m := map[string]any{"externalId": row.wamid, "status": status, "to": row.to}
	if row.identifier != "" {
		m["identifier"] = row.identifier
	}
	if row.campaignID != "" {
		m["campaign_id"] = row.campaignID
	}
	if reason != "" {
		m["reason"] = reason
	}
	if row.medium == logEmail {
		m["medium"] = "EMAIL"
	}
	return map[string]any{"event": "messageStatus", "message": m}
}

func (s *Server) campaignCompleted(c *campaignRec) map[string]any {
	type msg struct {
		Identifier string `json:"identifier"`
		To         string `json:"to"`
		Status     string `json:"status"`
		Response   string `json:"response"`
	}
	msgs := make([]msg, len(c.rows))
	sent, failed := 0, 0
	for i, row := range c.rows {
		at := row.processAt.Add(max(s.opts.DLRDelay, 0))
		status, resp, _ := s.rowStatus(row, at)
		if status == "failed" {
			failed++
		} else {
			sent++
		}
		msgs[i] = msg{Identifier: row.identifier, To: row.to, Status: status}
		if resp != nil {
			msgs[i].Response = *resp
		}
	}
	return map[string]any{"event": "campaignCompleted", "campaign_id": c.id, "total": len(c.rows), "sent": sent, "failed": failed, "messages": msgs}
}

type logView struct {
	ID         string  `json:"id"`
	CampaignID *string `json:"campaign_id"`
	Identifier *string `json:"identifier"`
	Medium     string  `json:"medium"`
	From       string  `json:"from"`
	To         string  `json:"to"`
	Template   string  `json:"template"`
	Status     string  `json:"status"`
	Response   *string `json:"response"`
	CreatedAt  string  `json:"createdAt"`
	UpdatedAt  string  `json:"updatedAt"`
}

func (s *Server) logView(r *logRow, now time.Time) logView {
	status, resp, updated := s.rowStatus(r, now)
	medium := "WHATSAPP"
	if r.medium == logEmail {
		medium = "EMAIL"
	}
	v := logView{ID: r.id, Medium: medium, From: r.from, To: r.to, Template: r.template, Status: status,
		Response: resp, CreatedAt: isoTime(r.created), UpdatedAt: isoTime(updated)}
	if r.campaignID != "" {
		v.CampaignID = &r.campaignID
	}
	if r.identifier != "" {
		v.Identifier = &r.identifier
	}
	return v
}

func mediumOfLog(r *logRow) string {
	if r.medium == logEmail {
		return "EMAIL"
	}
	return "WHATSAPP"
}

var logStatuses = []string{"pending", "sent", "delivered", "read", "failed"}

func (s *Server) fetchLogs(w http.ResponseWriter, r *http.Request) {
	size, num, okPage := paging(w, r, false, 50)
	if !okPage {
		return
	}
	q := r.URL.Query()
	campaign, ident, medium, status := q.Get("campaign_id"), q.Get("identifier"), strings.ToUpper(q.Get("medium")), q.Get("status")
	before := q.Get("before")
	if status != "" {
		known := false
		for _, v := range logStatuses {
			known = known || v == status
		}
		if !known {
			fail(w, http.StatusBadRequest, oneOf("status", logStatuses...))
			return
		}
	}
	now := s.opts.Now()
	st := s.state().wa
	skip := (num - 1) * size
	total := 0
	page := make([]logView, 0, min(size, 100))
	var cursor uint64 // list rows older than this (0: all)
	visit := func(row *logRow) {
		if row.evicted || (campaign != "" && row.campaignID != campaign) || (ident != "" && row.identifier != ident) ||
			(medium != "" && medium != mediumOfLog(row)) || (cursor > 0 && row.seq >= cursor) {
			return
		}
		if status != "" {
			if st, _, _ := s.rowStatus(row, now); st != status {
				return
			}
		}
		if total >= skip && len(page) < size {
			page = append(page, s.logView(row, now)) // only the page's rows are formatted
		}
		total++
	}
	st.mu.RLock()
	if before != "" {
		c := st.byID[before]
		if c == nil {
			st.mu.RUnlock()
			fail(w, http.StatusBadRequest, `"before" must be the id of a kept log row`)
			return
		}
		cursor = c.seq
	}
	switch {
	case campaign != "":
		// A campaign's rows in the order of its messages.
		if c := st.campaigns[campaign]; c != nil {
			for _, row := range c.rows {
				visit(row)
			}
		}
	case ident != "":
		list := st.byIdent[ident]
		for i := len(list) - 1; i >= 0; i-- {
			visit(list[i])
		}
	default:
		n := len(st.rows)
		for i := n - 1; i >= 0; i-- {
			visit(st.rows[(st.head+i)%n])
		}
	}
	st.mu.RUnlock()
	writeJSON(w, 200, map[string]any{"data": page, "message": "Logs fetched successfully", "success": true,
		"meta": map[string]int{"page": num, "size": size, "total": total}})
}

type sessionRequest struct {
	From       *string `json:"from"`
	To         *string `json:"to"`
	Message    *string `json:"message"`
	Attachment *struct {
		Type *string `json:"type"`
		URL  *string `json:"url"`
	} `json:"attachment"`
}

var attachmentTypes = []string{"IMAGE", "VIDEO", "DOCUMENT", "AUDIO"}

// sendSession sends a free-form message, allowed only within the
// customer's session window (POST /sandbox/inbound opens one).
func (s *Server) sendSession(w http.ResponseWriter, r *http.Request) {
	var q sessionRequest
	if !decode(w, r, &q) {
		return
	}
	if msg := checkFrom(q.From); msg != "" {
		fail(w, http.StatusBadRequest, msg)
		return
	}
	if q.To == nil {
		fail(w, http.StatusBadRequest, required("to"))
		return
	}
	to, valid := normalPhone(*q.To)
	if !valid {
		fail(w, http.StatusBadRequest, invalidPhone("to"))
		return
	}
	contentType, mediaURL := "TEXT", ""
	if a := q.Attachment; a != nil {
		if a.Type == nil {
			fail(w, http.StatusBadRequest, required("type"))
			return
		}
		contentType = strings.ToUpper(*a.Type)
		known := false
		for _, t := range attachmentTypes {
			known = known || t == contentType
		}
		if !known {
			fail(w, http.StatusBadRequest, oneOf("type", attachmentTypes...))
			return
		}
		if a.URL == nil || *a.URL == "" {
			fail(w, http.StatusBadRequest, required("url"))
			return
		}
		mediaURL = *a.URL
	}
	if q.Message == nil && mediaURL == "" {
		fail(w, http.StatusBadRequest, required("message"))
		return
	}
	text := ""
	if q.Message != nil {
		text = *q.Message
	}
	if text == "" && mediaURL == "" {
		fail(w, http.StatusBadRequest, notEmpty("message"))
		return
	}
	st := s.state()
	now := s.opts.Now()
	conv, open := st.wa.session(to, now, s.opts.SessionWindow)
	if !open {
		fail(w, http.StatusBadRequest, "Session expired, use a template message")
		return
	}
	s.recordMessage(st, mediumWhatsApp, to, "session\x00"+text+"\x00"+mediaURL)
	stamp := isoTime(now)
	msg := map[string]any{
		"id": newUUID(), "content": text, "contentType": contentType,
		"sender":     map[string]any{"name": "Sandbox WhatsApp", "authUser": true, "lastActivity": stamp},
		"externalId": waID(), "conversation_id": conv.id, "createdAt": stamp, "updatedAt": stamp,
		"subject": nil, "imageUrl": nil, "videoUrl": nil, "documentUrl": nil, "audioUrl": nil, "quoted_message_id": nil,
	}
	if mediaURL != "" {
		msg[strings.ToLower(contentType)+"Url"] = mediaURL
	}
	ok(w, "Message sent to customer", msg)
}

// inbound simulates a customer's WhatsApp message (POST /sandbox/inbound
// {from, to, message}): it opens the session window and pushes a newMessage
// webhook.
func (s *Server) inbound(w http.ResponseWriter, r *http.Request) {
	var q struct {
		From    *string `json:"from"`
		To      *string `json:"to"`
		Message *string `json:"message"`
		Name    string  `json:"name"`
	}
	if !decode(w, r, &q) {
		return
	}
	if q.From == nil {
		fail(w, http.StatusBadRequest, required("from"))
		return
	}
	from, valid := normalPhone(*q.From)
	if !valid {
		fail(w, http.StatusBadRequest, invalidPhone("from"))
		return
	}
	if q.To != nil {
		if p, _ := normalPhone(*q.To); p != WhatsAppNumber {
			fail(w, http.StatusBadRequest, fmt.Sprintf(`"to" %s is not connected to a WhatsApp channel`, *q.To))
			return
		}
	}
	if q.Message == nil || *q.Message == "" {
		fail(w, http.StatusBadRequest, required("message"))
		return
	}
	now := s.opts.Now()
	conv := s.state().wa.inbound(from, now)
	name := q.Name
	if name == "" {
		name = "Customer " + from
	}
	stamp := isoTime(now)
	ev := map[string]any{
		"event": "newMessage",
		"message": map[string]any{
			"sender":     map[string]any{"name": name, "authUser": false, "lastActivity": stamp},
			"externalId": waID(), "content": *q.Message, "contentType": "TEXT",
			"imageUrl": nil, "videoUrl": nil, "documentUrl": nil, "audioUrl": nil,
			"quoted_message_id": nil, "conversation_id": conv.id,
		},
		"conversation": map[string]any{
			"id": conv.id, "subject": nil, "agent": nil,
			"customer": map[string]any{"name": name, "email": nil}, "customer_id": "cust-" + from,
			"lastMessageAt": stamp,
		},
	}
	if s.hooks.enabled() {
		s.hooks.schedule(0, func() any { return ev })
	}
	ok(w, "Inbound message received", ev)
}

// sameLanguage reports whether a send's language (en when "", as OneRoute
// assumes) names a template's locale: the same code ignoring case and '-'
// for '_', or the same base language when either has no region.
func sameLanguage(lang, locale string) bool {
	if lang == "" {
		lang = "en"
	}
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "-", "_")) }
	a, b := norm(lang), norm(locale)
	if a == b {
		return true
	}
	baseA, regionA, _ := strings.Cut(a, "_")
	baseB, regionB, _ := strings.Cut(b, "_")
	return baseA == baseB && (regionA == "" || regionB == "")
}

// Statuses returns the status now of every kept WhatsApp message and email
// that has an identifier, by identifier (the newest message of each): the
// sandbox's own outcomes, which a sender's tracked statuses must match.
func (s *Server) Statuses() map[string]string {
	now := s.opts.Now()
	st := s.state().wa
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make(map[string]string, len(st.byIdent))
	for ident, list := range st.byIdent {
		if len(list) > 0 {
			status, _, _ := s.rowStatus(list[len(list)-1], now)
			out[ident] = status
		}
	}
	return out
}

// checkHeader checks a send's header against the template's: a media
// header of the template's type with an https link, and none for a
// template without one.
func (m *templateMessage) checkHeader(t *template) string {
	h := m.Template.Header
	switch {
	case t.header == "" && h != nil:
		return fmt.Sprintf("Template %s has no header", t.Name)
	case t.header == "":
		return ""
	case h == nil:
		return fmt.Sprintf("Template %s needs a header of type %s", t.Name, t.header)
	case h.Type != t.header:
		return fmt.Sprintf("Template %s has a header of type %s, got %s", t.Name, t.header, h.Type)
	case !strings.HasPrefix(h.Link, "https://"):
		return fmt.Sprintf("Template %s header link must be an https URL", t.Name)
	}
	return ""
}
