package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

var seedTime = time.Date(2021, 7, 16, 7, 56, 41, 226e6, time.UTC)

type channel struct {
	ID          string         `json:"id"`
	Phone       *string        `json:"phone"`
	Identifier  string         `json:"identifier"`
	Medium      string         `json:"medium"`
	Credentials map[string]any `json:"credentials"`
	Description string         `json:"description"`
	Name        string         `json:"name"`
	Type        string         `json:"type"`
	Provider    *string        `json:"provider"`
	Country     string         `json:"country"`
	Env         string         `json:"env"`
	Status      string         `json:"status"`
	WebhookURL  *string        `json:"webhookUrl"`
	CreatedAt   time.Time      `json:"createdAt"`
	UpdatedAt   time.Time      `json:"updatedAt"`
}

func strp(s string) *string { return &s }

var channels = []channel{
	{ID: WhatsAppChannelID, Phone: strp(WhatsAppNumber), Identifier: "sandbox-whatsapp", Medium: "WHATSAPP",
		Credentials: map[string]any{}, Description: "Sandbox WhatsApp number", Name: "Sandbox WhatsApp",
		Type: "CUSTOM", Country: "NG", Env: "TEST", Status: "ACTIVE", CreatedAt: seedTime, UpdatedAt: seedTime},
	{ID: SMSChannelID, Identifier: SMSSenderID, Medium: "SMS", Credentials: map[string]any{},
		Description: "Sandbox SMS sender", Name: SMSSenderID, Type: "CUSTOM", Country: "NG", Env: "TEST",
		Status: "ACTIVE", CreatedAt: seedTime, UpdatedAt: seedTime},
	{ID: EmailChannelID, Identifier: "support", Medium: "EMAIL",
		Credentials: map[string]any{"email": EmailAddress, "emailDomain": "mail.oneroute.io"},
		Description: "Email Account to Sendgrid", Name: EmailAddress, Type: "CUSTOM", Country: "NG", Env: "TEST",
		Status: "ACTIVE", CreatedAt: seedTime, UpdatedAt: seedTime},
}

func channelByID(id string) (channel, bool) {
	for _, c := range channels {
		if c.ID == id {
			return c, true
		}
	}
	return channel{}, false
}

// templates are the seeded WhatsApp templates: name → number of body parameters.
var templates = map[string]int{"first_welcome_messsage": 1, "new_conversation": 1, "otp_auth": 1}

func (s *Server) fetchChannels(w http.ResponseWriter, r *http.Request) {
	medium := strings.ToUpper(r.PathValue("medium"))
	out := []channel{}
	for _, c := range channels {
		if c.Medium == medium {
			out = append(out, c)
		}
	}
	ok(w, "Channels fetched successfully", out)
}

func (s *Server) fetchChannel(w http.ResponseWriter, r *http.Request) {
	c, found := channelByID(r.PathValue("id"))
	if !found {
		fail(w, http.StatusNotFound, "Channel not found")
		return
	}
	ok(w, "Channel fetched successfully", c)
}

// decode reads a JSON body, answering 400 in Joi style on failure.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		fail(w, http.StatusBadRequest, "could not read body")
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		fail(w, http.StatusBadRequest, "\"value\" must be of type object")
		return false
	}
	return true
}

type result struct {
	Status   string `json:"status"`
	Response string `json:"response"`
}

// validPhone accepts 8 to 15 digits after an optional '+' (stripped).
func validPhone(p string) (string, bool) {
	p = strings.TrimPrefix(p, "+")
	if len(p) < 8 || len(p) > 15 {
		return p, false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return p, false
		}
	}
	return p, true
}

func (s *Server) sendSMS(w http.ResponseWriter, r *http.Request) {
	ch, found := channelByID(r.PathValue("id"))
	if !found || ch.Medium != "SMS" {
		fail(w, http.StatusNotFound, "Channel not found")
		return
	}
	var req struct {
		Message    *string  `json:"message"`
		Recipients []string `json:"recipients"`
		Sender     string   `json:"sender"`
	}
	if !decode(w, r, &req) {
		return
	}
	switch {
	case req.Message == nil:
		fail(w, 400, `"message" is required`)
		return
	case *req.Message == "":
		fail(w, 400, `"message" is not allowed to be empty`)
		return
	case req.Recipients == nil:
		fail(w, 400, `"recipients" is required`)
		return
	case len(req.Recipients) == 0:
		fail(w, 400, `"recipients" must contain at least 1 items`)
		return
	case len(req.Recipients) > 1000:
		fail(w, 400, `"recipients" must contain less than or equal to 1000 items`)
		return
	}
	from := ch.Identifier
	if req.Sender != "" {
		from = req.Sender
	}
	now := s.opts.Now()
	units := smsUnits(*req.Message)
	out := make([]result, len(req.Recipients))
	recs := make([]*smsRecord, 0, len(req.Recipients))
	for i, to := range req.Recipients {
		p, valid := validPhone(to)
		if !valid {
			out[i] = result{Status: "failed", Response: "Invalid number"}
			continue
		}
		id := s.smsID()
		recs = append(recs, &smsRecord{ID: id, To: p, From: from, Message: *req.Message, Channel: ch.ID, Created: now, Units: units})
		s.recordMessage("sms", p, *req.Message)
		out[i] = result{Status: "success", Response: id}
	}
	s.msgMu.Lock()
	for _, m := range recs {
		s.msgs[m.ID] = m
		s.byChan[m.Channel] = append(s.byChan[m.Channel], m)
	}
	s.msgMu.Unlock()
	ok(w, "SMS processed successfully", out)
}

func smsUnits(msg string) int {
	n := utf8.RuneCountInString(msg)
	per := 160
	for _, r := range msg {
		if r > 127 {
			per = 70
			break
		}
	}
	return (n + per - 1) / per
}

// status decides an SMS's delivery status by its last digit and age.
func (s *Server) status(m *smsRecord, now time.Time) (status, reason string, delivered *time.Time) {
	last := m.To[len(m.To)-1]
	if last == '9' || now.Sub(m.Created) < s.opts.DLRDelay {
		return "pending", "Message queued", nil
	}
	t := m.Created.Add(max(s.opts.DLRDelay, 0))
	if last == '0' {
		return "undelivered", "Rejected by network", &t
	}
	return "delivered", "Message delivered to handset", &t
}

type smsView struct {
	ID            string     `json:"id"`
	ExternalID    string     `json:"externalId"`
	Status        string     `json:"status"`
	Reason        string     `json:"reason"`
	From          string     `json:"from"`
	To            string     `json:"to"`
	Message       string     `json:"message,omitempty"`
	Units         int        `json:"units"`
	DeliveredTime *time.Time `json:"delivered_time"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`
}

func (s *Server) view(m *smsRecord, now time.Time) smsView {
	st, reason, dt := s.status(m, now)
	v := smsView{ID: m.ID, ExternalID: m.ID, Status: st, Reason: reason, From: m.From, To: m.To,
		Message: m.Message, Units: m.Units, DeliveredTime: dt, CreatedAt: m.Created, UpdatedAt: m.Created}
	if dt != nil {
		v.UpdatedAt = *dt
	}
	return v
}

func (s *Server) getDLR(w http.ResponseWriter, r *http.Request) {
	s.msgMu.RLock()
	m, found := s.msgs[r.PathValue("id")]
	s.msgMu.RUnlock()
	if !found {
		fail(w, http.StatusNotFound, "Message not found")
		return
	}
	v := s.view(m, s.opts.Now())
	v.Message = ""
	writeJSON(w, 200, map[string]any{"event": "smsDeliveryReport", "message": nil, "conversation": v})
}

func (s *Server) fetchSMS(w http.ResponseWriter, r *http.Request) {
	ch, found := channelByID(r.PathValue("id"))
	if !found || ch.Medium != "SMS" {
		fail(w, http.StatusNotFound, "Channel not found")
		return
	}
	q := r.URL.Query()
	size, err1 := strconv.Atoi(q.Get("page[size]"))
	num, err2 := strconv.Atoi(q.Get("page[number]"))
	switch {
	case q.Get("page[size]") == "":
		fail(w, 400, `"page[size]" is required`)
		return
	case q.Get("page[number]") == "":
		fail(w, 400, `"page[number]" is required`)
		return
	case err1 != nil || size < 1 || size > 1000:
		fail(w, 400, `"page[size]" must be a number between 1 and 1000`)
		return
	case err2 != nil || num < 1:
		fail(w, 400, `"page[number]" must be greater than or equal to 1`)
		return
	}
	status := q.Get("status")
	if status != "" && status != "pending" && status != "delivered" && status != "undelivered" {
		fail(w, 400, `"status" must be one of [delivered, pending, undelivered]`)
		return
	}
	to := strings.TrimPrefix(q.Get("to"), "+")
	now := s.opts.Now()
	s.msgMu.RLock()
	all := s.byChan[ch.ID]
	var match []smsView
	// Newest first, as message lists usually are.
	for i := len(all) - 1; i >= 0; i-- {
		m := all[i]
		if to != "" && m.To != to {
			continue
		}
		v := s.view(m, now)
		if status != "" && v.Status != status {
			continue
		}
		match = append(match, v)
	}
	s.msgMu.RUnlock()
	total := len(match)
	start := min((num-1)*size, total)
	end := min(start+size, total)
	page := match[start:end]
	if page == nil {
		page = []smsView{}
	}
	writeJSON(w, 200, map[string]any{"data": page, "message": "Messages fetched successfully", "success": true,
		"meta": map[string]int{"page": num, "size": size, "total": total}})
}

func (s *Server) sendTemplate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From     *string `json:"from"`
		Messages []struct {
			To       *string `json:"to"`
			Save     bool    `json:"save"`
			Template *struct {
				Name       string `json:"name"`
				Parameters []struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"parameters"`
			} `json:"template"`
			Identifier string `json:"identifier"`
		} `json:"messages"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.From == nil {
		fail(w, 400, `"from" is required`)
		return
	}
	if strings.TrimPrefix(*req.From, "+") != WhatsAppNumber {
		fail(w, 400, fmt.Sprintf(`"from" %s is not connected to a WhatsApp channel`, *req.From))
		return
	}
	if req.Messages == nil {
		fail(w, 400, `"messages" is required`)
		return
	}
	if len(req.Messages) == 0 || len(req.Messages) > 1000 {
		fail(w, 400, `"messages" must contain between 1 and 1000 items`)
		return
	}
	for i, m := range req.Messages {
		if m.To == nil {
			fail(w, 400, fmt.Sprintf(`"messages[%d].to" is required`, i))
			return
		}
		if m.Template == nil {
			fail(w, 400, `"template" is required`)
			return
		}
		if _, known := templates[m.Template.Name]; !known {
			fail(w, 400, fmt.Sprintf("Template %s not found or not approved", m.Template.Name))
			return
		}
	}
	out := make([]result, len(req.Messages))
	for i, m := range req.Messages {
		p, valid := validPhone(*m.To)
		want := templates[m.Template.Name]
		switch {
		case !valid:
			out[i] = result{Status: "failed", Response: "Invalid number"}
		case len(m.Template.Parameters) != want:
			out[i] = result{Status: "failed", Response: fmt.Sprintf("Template %s takes %d parameters, got %d", m.Template.Name, want, len(m.Template.Parameters))}
		default:
			var content strings.Builder
			content.WriteString(m.Template.Name)
			for _, p := range m.Template.Parameters {
				content.WriteByte(0)
				content.WriteString(p.Text)
			}
			s.recordMessage("whatsapp", p, content.String())
			out[i] = result{Status: "success", Response: waID()}
		}
	}
	ok(w, "Message sent to customer", out)
}

func (s *Server) sendEmail(w http.ResponseWriter, r *http.Request) {
	ch, found := channelByID(r.PathValue("id"))
	if !found || ch.Medium != "EMAIL" {
		fail(w, http.StatusNotFound, "Channel not found")
		return
	}
	var req struct {
		Subject    *string  `json:"subject"`
		Message    *string  `json:"message"`
		Recipients []string `json:"recipients"`
	}
	if !decode(w, r, &req) {
		return
	}
	switch {
	case req.Subject == nil:
		fail(w, 400, `"subject" is required`)
		return
	case req.Message == nil:
		fail(w, 400, `"message" is required`)
		return
	case len(req.Recipients) == 0:
		fail(w, 400, `"recipients" is required`)
		return
	}
	out := make([]result, len(req.Recipients))
	for i, to := range req.Recipients {
		at := strings.LastIndexByte(to, '@')
		if at < 1 || at == len(to)-1 {
			out[i] = result{Status: "failed", Response: "Invalid email address"}
			continue
		}
		s.recordMessage("email", strings.ToLower(to), *req.Subject+"\x00"+*req.Message)
		out[i] = result{Status: "success", Response: fmt.Sprintf("sg-%d", s.idSeq.Add(1))}
	}
	ok(w, "Email sent successfully", out)
}
