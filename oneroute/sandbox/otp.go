package sandbox

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// otpRec is an issued OneOTP code.
type otpRec struct {
	key, otp, templateID string
	phone, email         string // phone digits without '+'
	channels             []string
	created, expires     time.Time
	used                 bool
}

// otpStore keeps issued OTPs by key, the oldest forgotten beyond limit.
type otpStore struct {
	mu    sync.Mutex
	limit int
	byKey map[string]*otpRec
	order []string
}

func newOTPStore(limit int) *otpStore { return &otpStore{limit: limit, byKey: map[string]*otpRec{}} }

func (st *otpStore) add(o *otpRec) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for len(st.order) >= st.limit {
		delete(st.byKey, st.order[0])
		st.order = st.order[1:]
	}
	st.byKey[o.key] = o
	st.order = append(st.order, o.key)
}

// with runs fn on the OTP of key under the store's lock.
func (st *otpStore) with(key string, fn func(o *otpRec)) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	o := st.byKey[key]
	if o == nil {
		return false
	}
	fn(o)
	return true
}

var otpMedia = []string{"WHATSAPP", "SMS", "EMAIL", "EMAILS", "USSD"}

type otpOptions struct {
	OTP          *string `json:"otp"`
	Length       *int    `json:"length"`
	Digits       *bool   `json:"digits"`
	Alphabets    *bool   `json:"alphabets"`
	UpperCase    *bool   `json:"upperCase"`
	SpecialChars *bool   `json:"specialChars"`
	Minutes      *int    `json:"minutes"`
}

// code generates an OTP as the options ask: length 4 digits by default.
func (o *otpOptions) code() (string, string) {
	if o.OTP != nil {
		if *o.OTP == "" {
			return "", notEmpty("otp")
		}
		return *o.OTP, ""
	}
	length := 4
	if o.Length != nil {
		length = *o.Length
	}
	if length < 4 {
		return "", `"length" must be greater than or equal to 4`
	}
	if length > 12 {
		return "", `"length" must be less than or equal to 12`
	}
	on := func(p *bool, def bool) bool {
		if p == nil {
			return def
		}
		return *p
	}
	var set string
	if on(o.Digits, true) {
		set += "0123456789"
	}
	if on(o.Alphabets, false) {
		set += "abcdefghijklmnopqrstuvwxyz"
	}
	if on(o.UpperCase, false) {
		set += "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	}
	if on(o.SpecialChars, false) {
		set += "#$%&*+-=?@"
	}
	if set == "" {
		return "", `"options" must enable at least one of [digits, alphabets, upperCase, specialChars]`
	}
	b := make([]byte, length)
	rand.Read(b)
	for i := range b {
		b[i] = set[int(b[i])%len(set)]
	}
	return string(b), ""
}

func (s *Server) sendOTP(w http.ResponseWriter, r *http.Request) {
	var q struct {
		Channels    []string    `json:"channels"`
		TemplateID  *string     `json:"templateId"`
		PhoneNumber string      `json:"phoneNumber"`
		Email       string      `json:"email"`
		Options     *otpOptions `json:"options"`
	}
	if !decode(w, r, &q) {
		return
	}
	if q.Channels == nil {
		fail(w, 400, required("channels"))
		return
	}
	if len(q.Channels) == 0 {
		fail(w, 400, `"channels" must contain at least 1 items`)
		return
	}
	var media []string
	needPhone, needEmail := false, false
	for _, c := range q.Channels {
		known := false
		for _, m := range otpMedia {
			known = known || c == m
		}
		if !known {
			fail(w, 400, oneOf("channels", otpMedia...))
			return
		}
		if c == "EMAILS" {
			c = "EMAIL"
		}
		dup := false
		for _, m := range media {
			dup = dup || m == c
		}
		if !dup {
			media = append(media, c)
		}
		needEmail = needEmail || c == "EMAIL"
		needPhone = needPhone || c != "EMAIL"
	}
	if q.TemplateID == nil {
		fail(w, 400, required("templateId"))
		return
	}
	tmpl, found := otpTemplateByID(*q.TemplateID)
	if !found {
		fail(w, 400, "Template not found")
		return
	}
	phone := ""
	if needPhone {
		if q.PhoneNumber == "" {
			fail(w, 400, required("phoneNumber"))
			return
		}
		p, valid := normalPhone(q.PhoneNumber)
		if !valid {
			fail(w, 400, invalidPhone("phoneNumber"))
			return
		}
		phone = p
	}
	if needEmail && q.Email == "" {
		fail(w, 400, required("email"))
		return
	}
	opts := q.Options
	if opts == nil {
		opts = &otpOptions{}
	}
	minutes := 5
	if opts.Minutes != nil {
		minutes = *opts.Minutes
	}
	if minutes < 1 || minutes > 1440 {
		fail(w, 400, `"minutes" must be between 1 and 1440`)
		return
	}
	code, msg := opts.code()
	if msg != "" {
		fail(w, 400, msg)
		return
	}

	st := s.state()
	now := s.opts.Now()
	var key [96]byte
	rand.Read(key[:])
	rec := &otpRec{key: base64.RawURLEncoding.EncodeToString(key[:]), otp: code, templateID: tmpl.ID, phone: phone,
		channels: media, created: now, expires: now.Add(time.Duration(minutes) * time.Minute)}
	text := strings.NewReplacer("{{firm}}", "OneRoute Sandbox", "{{otp}}", code, "{{minutes}}", strconv.Itoa(minutes)).Replace(tmpl.Body)
	type delivery struct {
		Medium string `json:"medium"`
		Data   string `json:"data"`
	}
	type failure struct {
		Medium string `json:"medium"`
		Error  string `json:"error"`
	}
	data, errs := []delivery{}, []failure{}
	for _, m := range media {
		switch m {
		case "WHATSAPP":
			s.recordMessage(st, mediumWhatsApp, phone, text)
			data = append(data, delivery{m, waID()})
		case "SMS":
			p, _ := parsePhone([]byte(phone))
			seq := st.sms.add(routeOTP, []byte(otpSender), []byte(text), now.UnixNano(), uint16(smsUnits(text)), []phoneNum{p})
			s.recordSMS(st, p, maphash.String(s.seed, text))
			data = append(data, delivery{m, smsID(seq)})
		case "EMAIL":
			if !validEmail(q.Email) {
				errs = append(errs, failure{m, "Invalid email address"})
				continue
			}
			rec.email = strings.ToLower(q.Email)
			s.recordMessage(st, mediumEmail, rec.email, text)
			data = append(data, delivery{m, "Sent successfully"})
		case "USSD":
			data = append(data, delivery{m, "Dial *347*100# to verify"})
		}
	}
	st.otp.add(rec)
	okBody(w, "Otp sent successfully", map[string]any{"key": rec.key, "data": data, "errors": errs})
}

// matches reports whether identifier names the OTP's recipient.
func (o *otpRec) matches(identifier string) bool {
	if strings.Contains(identifier, "@") {
		return o.email != "" && strings.EqualFold(identifier, o.email)
	}
	p, _ := normalPhone(identifier)
	return o.phone != "" && p == o.phone
}

func (s *Server) verifyOTP(w http.ResponseWriter, r *http.Request) {
	var q struct {
		Key        *string `json:"key"`
		OTP        *string `json:"otp"`
		Identifier *string `json:"identifier"`
	}
	if !decode(w, r, &q) {
		return
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"key", q.Key}, {"otp", q.OTP}, {"identifier", q.Identifier}} {
		if f.v == nil {
			fail(w, 400, required(f.name))
			return
		}
		if *f.v == "" {
			fail(w, 400, notEmpty(f.name))
			return
		}
	}
	now := s.opts.Now()
	msg := ""
	found := s.state().otp.with(*q.Key, func(o *otpRec) {
		switch {
		case !o.matches(*q.Identifier):
			msg = "Invalid key"
		case o.used:
			msg = "OTP already used!!"
		case !now.Before(o.expires):
			msg = "OTP expired"
		case subtle.ConstantTimeCompare([]byte(o.otp), []byte(*q.OTP)) != 1:
			msg = "Invalid OTP"
		default:
			o.used = true
		}
	})
	if !found {
		msg = "Invalid key"
	}
	if msg != "" {
		fail(w, 400, msg)
		return
	}
	okBody(w, "Otp verified successfully", map[string]string{"status": "Success", "response": "OTP Matched"})
}

// peekOTP reveals an issued OTP (GET /sandbox/otp/{key}), which the real
// service only ever sends to the customer.
func (s *Server) peekOTP(w http.ResponseWriter, r *http.Request) {
	var view map[string]any
	found := s.state().otp.with(r.PathValue("key"), func(o *otpRec) {
		view = map[string]any{"otp": o.otp, "channels": o.channels, "used": o.used,
			"expires_at": isoTime(o.expires), "created_at": isoTime(o.created), "templateId": o.templateID}
		if o.phone != "" {
			view["phoneNumber"] = "+" + o.phone
		}
		if o.email != "" {
			view["email"] = o.email
		}
	})
	if !found {
		fail(w, http.StatusNotFound, "OTP not found")
		return
	}
	ok(w, "OTP fetched successfully", view)
}

// ussdVerify simulates the customer dialling the USSD code
// (POST /sandbox/otp/{key}/ussd): the OTP is used and an otpVerified
// webhook is pushed, shaped as OneRoute documents it plus "event".
func (s *Server) ussdVerify(w http.ResponseWriter, r *http.Request) {
	now := s.opts.Now()
	msg := ""
	var ev map[string]any
	found := s.state().otp.with(r.PathValue("key"), func(o *otpRec) {
		ussd := false
		for _, c := range o.channels {
			ussd = ussd || c == "USSD"
		}
		switch {
		case !ussd:
			msg = "USSD was not among the OTP's channels"
		case o.used:
			msg = "OTP already used!!"
		case !now.Before(o.expires):
			msg = "OTP expired"
		default:
			o.used = true
			ev = map[string]any{"event": "otpVerified", "id": o.templateID, "otp": o.otp, "identifier": "+" + o.phone,
				"expiration_time": isoTime(o.expires), "createdAt": isoTime(o.created)}
		}
	})
	switch {
	case !found:
		fail(w, http.StatusNotFound, "OTP not found")
	case msg != "":
		fail(w, 400, msg)
	default:
		if s.hooks.enabled() {
			s.hooks.schedule(0, func() any { return ev })
		}
		ok(w, fmt.Sprintf("OTP verified by USSD for %s", ev["identifier"]), ev)
	}
}
