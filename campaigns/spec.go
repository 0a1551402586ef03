package campaigns

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"go.yaml.in/yaml/v3"

	"github.com/fanoutdev/fanout/config"
)

// Channel names the OneRoute product a campaign sends through.
type Channel string

// The channels a spec may name in its `channel` key.
const (
	ChannelSMS              Channel = "sms"
	ChannelWhatsAppTemplate Channel = "whatsapp_template"
	ChannelEmail            Channel = "email"
	// ChannelWhatsAppCampaign sends templates through OneRoute's campaign
	// endpoint (POST /api/public/whatsapp/campaign), one OneRoute campaign
	// per batch request, each message named by its row's identifier.
	ChannelWhatsAppCampaign Channel = "whatsapp_campaign"
)

// Channels lists every valid channel, in the order the docs present them.
var Channels = []Channel{ChannelSMS, ChannelWhatsAppTemplate, ChannelEmail, ChannelWhatsAppSession, ChannelWhatsAppCampaign, ChannelPush}

// PerMessage reports whether the worker sends each recipient of a campaign
// on channel c in a request of its own: push always, SMS and email when
// the content is personalised (a shared text is one request for the whole
// batch). WhatsApp templates and OneRoute campaigns are batched calls; a
// session campaign mixes both and counts as batched. The dispatcher sizes
// such campaigns' tasks by it (config.DefaultUnlimitedBatchSize).
func (c Channel) PerMessage(personalised bool) bool {
	switch c {
	case ChannelPush:
		return true
	case ChannelSMS, ChannelEmail:
		return personalised
	}
	return false
}

// Chunked reports whether a batch of a campaign on channel c may be sent as
// several batched calls, each for part of its recipients: an SMS or email
// with one text for all, or WhatsApp templates. (A OneRoute campaign is one
// per call, and a session campaign mixes per-message and batched calls:
// neither is split.) The dispatcher gives such campaigns tasks larger than
// a call (Batch.Request).
func (c Channel) Chunked(personalised bool) bool {
	switch c {
	case ChannelWhatsAppTemplate:
		return true
	case ChannelSMS, ChannelEmail:
		return !personalised
	}
	return false
}

// AddressKind says what a channel's recipients are addressed by.
func (c Channel) AddressKind() string {
	if c == ChannelEmail {
		return "email"
	}
	if c == ChannelPush {
		return "customer"
	}
	return "phone"
}

// Rate is a limit per sender (channel id or from number), and the one rate
// type fanout passes around: the configured default, a campaign's override
// of it (the spec's rate:, whose zero fields keep the default; see Over),
// and the effective limit in estimates. Zero everywhere means no limit. The
// worker converts it to ratelimit.Limit in one function.
type Rate struct {
	PerSecond int `yaml:"per_second" json:"per_second,omitempty"`
	PerMinute int `yaml:"per_minute" json:"per_minute,omitempty"`
	PerDay    int `yaml:"per_day" json:"per_day,omitempty"`
	Burst     int `yaml:"burst" json:"burst,omitempty"`
}

// Over returns the limit a campaign sends under: each field of r (the
// spec's rate, possibly nil) wins over the configured default def.
func (r *Rate) Over(def Rate) Rate {
	l := def
	if r != nil {
		if r.PerSecond > 0 {
			l.PerSecond = r.PerSecond
		}
		if r.PerMinute > 0 {
			l.PerMinute = r.PerMinute
		}
		if r.PerDay > 0 {
			l.PerDay = r.PerDay
		}
		if r.Burst > 0 {
			l.Burst = r.Burst
		}
	}
	return l
}

// Steady returns the most recipients per second r lets through over a long
// run: the tightest of its limits, each turned into a per-second rate; 0
// when r sets none.
func (r Rate) Steady() float64 {
	best := 0.0
	for _, l := range []float64{float64(r.PerSecond), float64(r.PerMinute) / 60, float64(r.PerDay) / 86400} {
		if l > 0 && (best == 0 || l < best) {
			best = l
		}
	}
	return best
}

// htmlTag finds an HTML tag or doctype: "<" then a letter (or "/" and a
// letter, or "!doctype"), up to the next ">".
var htmlTag = regexp.MustCompile(`(?i)<(?:!doctype|/?[a-z][a-z0-9-]*)(?:\s[^<>]*)?/?>`)

// LooksLikeHTML reports whether an email body holds an HTML tag, such as
// <p>, <br/>, <a href="...">, </b> or <!DOCTYPE html>; "3 < 5" and
// "<3" are not tags.
func LooksLikeHTML(body string) bool { return htmlTag.MatchString(body) }

// HTML reports whether the spec's body is HTML: an email whose content_type
// is html, or unset with a body that LooksLikeHTML.
func (s Spec) HTML() bool {
	if s.Channel != ChannelEmail {
		return false
	}
	if s.ContentType != "" {
		return s.ContentType == "html"
	}
	return LooksLikeHTML(s.Message)
}

// Template is a WhatsApp template reference: its approved name and the body
// parameters, each a Go text/template over the recipient's fields.
type Template struct {
	Name       string   `yaml:"name" json:"name"`
	Language   string   `yaml:"language" json:"language,omitempty"`
	Parameters []string `yaml:"parameters" json:"parameters,omitempty"`
	// Header is the template's header value (tplspec.go).
	Header *TemplateHeader `yaml:"header" json:"header,omitempty"`
	// Buttons are the values of the template's buttons (tplspec.go).
	Buttons []TemplateButton `yaml:"buttons" json:"buttons,omitempty"`
}

// Spec is a campaign as a user writes it in YAML. Spec keys are a contract
// with users' files: add new ones, never rename.
type Spec struct {
	// ID identifies the campaign; generated when absent. Letters, digits,
	// '-', '_' and '.', at most 64.
	ID string `yaml:"id" json:"id"`
	// Name is a human label.
	Name string `yaml:"name" json:"name,omitempty"`
	// Channel is sms, whatsapp_template or email.
	Channel Channel `yaml:"channel" json:"channel"`
	// ChannelID is the OneRoute channel for SMS and email.
	ChannelID string `yaml:"channel_id" json:"channel_id,omitempty"`
	// From is the WhatsApp business number (or an SMS sender override).
	From string `yaml:"from" json:"from,omitempty"`
	// Message is a Go text/template over the recipient's fields (SMS body,
	// email body). Missing fields are errors.
	Message string `yaml:"message" json:"message,omitempty"`
	// Template is the WhatsApp template to send.
	Template *Template `yaml:"template" json:"template,omitempty"`
	// Subject is the email subject, also a template (always plain text).
	Subject string `yaml:"subject" json:"subject,omitempty"`
	// ContentType is an email body's type: html renders recipient fields
	// through html/template, escaped for where they land (text, attribute,
	// URL); text renders them as they are. Default: html when the message
	// holds an HTML tag (see LooksLikeHTML), else text. Email only.
	ContentType string `yaml:"content_type" json:"content_type,omitempty"`
	// Recipients is the recipient file (CSV with a header row, a JSON array
	// of objects, or NDJSON), relative to the spec file; "-" is stdin.
	Recipients string `yaml:"recipients" json:"recipients"`
	// Format is the recipient file's format: csv, json or ndjson; default
	// from the file's extension, else sniffed from its first byte.
	Format string `yaml:"format" json:"format,omitempty"`
	// Delimiter is the CSV field separator: one character such as ";" or
	// "|", or "tab"; default ',' (tab for .tsv files).
	Delimiter string `yaml:"delimiter" json:"delimiter,omitempty"`
	// To is the recipient field holding the address; default: "phone" (or
	// "email" for email), then "to".
	To string `yaml:"to" json:"to,omitempty"`
	// DefaultRegion is the ISO region for numbers without a country code;
	// default NG.
	DefaultRegion string `yaml:"default_region" json:"default_region,omitempty"`
	// Suppress is a file of numbers or emails never to message, relative to
	// the spec file.
	Suppress string `yaml:"suppress" json:"suppress,omitempty"`
	// Rate overrides the sender's configured limits for this campaign.
	Rate *Rate `yaml:"rate" json:"rate,omitempty"`
	// BatchSize is the number of recipients per task, and per batched
	// call; default from config (FANOUT_BATCH_SIZE), else chosen by the
	// dispatcher: config.DefaultUnlimitedBatchSize for an unthrottled
	// campaign sent in several requests (not a personalised email),
	// config.DefaultBatchSize otherwise.
	BatchSize int `yaml:"batch_size" json:"batch_size,omitempty"`
	// AtLeastOnce lets fanout resend a message whose first attempt had an
	// ambiguous outcome that no lookup could settle. Default false: such
	// recipients end as "unknown" and are never resent.
	AtLeastOnce bool `yaml:"at_least_once" json:"at_least_once,omitempty"`
	// NotifyURL, when set, receives a signed JSON summary of the campaign
	// each time it completes (POST, X-Fanout-Signature: hex HMAC-SHA512 of
	// the body keyed by FANOUT_NOTIFY_SECRET). http or https.
	NotifyURL string `yaml:"notify_url" json:"notify_url,omitempty"`
	// Schedule bounds when the campaign may send.
	Schedule *Schedule `yaml:"schedule" json:"schedule,omitempty"`
	// FallbackTemplate is the template a whatsapp_session recipient gets
	// when their session window is closed (session.go).
	FallbackTemplate *Template `yaml:"fallback_template" json:"fallback_template,omitempty"`
	// MediaURL is optional media sent with a whatsapp_session message.
	MediaURL string `yaml:"media_url" json:"media_url,omitempty"`
	// TemplatePrice is the price of one template message, for the saving
	// a whatsapp_session campaign estimates (0: not estimated).
	TemplatePrice float64 `yaml:"template_price" json:"template_price,omitempty"`
	// WidgetID is a push campaign's OneRoute live-chat widget.
	WidgetID string `yaml:"widget_id" json:"widget_id,omitempty"`
	// Title is a push notification's title, a template like message.
	Title string `yaml:"title" json:"title,omitempty"`
	// URL is the link a push notification opens (optional), a template.
	URL string `yaml:"url" json:"url,omitempty"`

	// file and dir are where the spec was loaded from, for errors and
	// relative paths; lines maps top-level keys to their line.
	file      string
	dir       string
	lines     map[string]int
	digest    [32]byte // of the spec file's bytes
	generated bool     // ID was generated, not written in the spec
}

// Schedule bounds when a campaign sends.
type Schedule struct {
	// ExpiresAt is the campaign's deadline: recipients not sent by then are
	// skipped ("expired"), and retries stop. RFC 3339, e.g.
	// 2026-12-01T18:00:00+01:00.
	ExpiresAt *time.Time `yaml:"expires_at" json:"expires_at,omitempty"`
	// StartAt holds every send until this time (RFC 3339); see schedule.go.
	StartAt *time.Time `yaml:"start_at" json:"start_at,omitempty"`
	// Window is the hours of the week recipients may be messaged.
	Window *Window `yaml:"window" json:"window,omitempty"`
	// TimezoneColumn names a recipient column holding the recipient's IANA
	// time zone, in which the window is read for them.
	TimezoneColumn string `yaml:"timezone_column" json:"timezone_column,omitempty"`
	// TimezoneFromPhone reads the window in the zone of each recipient's
	// phone number's country.
	TimezoneFromPhone bool `yaml:"timezone_from_phone" json:"timezone_from_phone,omitempty"`
}

// Expiry returns the deadline as unix seconds, or 0 for none.
func (s Spec) Expiry() int64 {
	if s.Schedule == nil || s.Schedule.ExpiresAt == nil {
		return 0
	}
	return s.Schedule.ExpiresAt.Unix()
}

// SpecError is a problem in a campaign spec, located by file and line.
type SpecError struct {
	File string
	Line int // 0 when unknown
	Msg  string
}

func (e *SpecError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// SpecErrors collects every problem of a spec, so a user fixes them in one go.
type SpecErrors []*SpecError

func (es SpecErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find each SpecError.
func (es SpecErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// LoadSpec reads and validates a campaign spec file. Errors name the file and
// line and say how to fix the problem.
// A spec larger than MaxSpecBytes is refused before it is read whole.
func LoadSpec(path string) (Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return Spec{}, fmt.Errorf("read campaign spec: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return Spec{}, &SpecError{File: path, Msg: "is a folder, not a campaign spec; see examples/sms.yaml"}
	} else if err == nil && fi.Mode().IsRegular() && fi.Size() > MaxSpecBytes {
		return Spec{}, &SpecError{File: path, Msg: fmt.Sprintf("is %d bytes; a campaign spec may be at most %d (recipients belong in the recipients file)", fi.Size(), MaxSpecBytes)}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSpecBytes+1))
	if err != nil {
		return Spec{}, fmt.Errorf("read campaign spec: %w", err)
	}
	if len(data) > MaxSpecBytes {
		return Spec{}, &SpecError{File: path, Msg: fmt.Sprintf("is over %d bytes, the cap for a campaign spec (recipients belong in the recipients file)", MaxSpecBytes)}
	}
	return ParseSpec(path, data)
}

// MaxSpecBytes caps a campaign spec's size.
const MaxSpecBytes = 1 << 20

// ParseSpec parses and validates a spec held in memory; name is used in
// errors and as the base for relative paths.
func ParseSpec(name string, data []byte) (Spec, error) {
	var s Spec
	if len(data) > MaxSpecBytes {
		return s, &SpecError{File: name, Msg: fmt.Sprintf("is over %d bytes, the cap for a campaign spec", MaxSpecBytes)}
	}
	if !utf8.Valid(data) {
		return s, &SpecError{File: name, Msg: "is not UTF-8 text: is it a campaign spec? See examples/sms.yaml"}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return s, &SpecError{File: name, Line: yamlErrLine(err), Msg: "not valid YAML: " + yamlErrMsg(err)}
	}
	if len(root.Content) == 0 {
		return s, &SpecError{File: name, Msg: "the spec is empty; see examples/sms.yaml for a complete one"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		if se := scheduleTimeError(root.Content[0], name); se != nil {
			return s, se
		}
		return s, &SpecError{File: name, Line: yamlErrLine(err), Msg: yamlErrMsg(err)}
	}
	if err := wholeNumbers(root.Content[0], name, map[string]bool{
		"batch_size": true, "per_second": true, "per_minute": true, "per_day": true, "burst": true}); err != nil {
		return s, err
	}
	s.file = name
	s.dir = filepath.Dir(name)
	s.digest = sha256.Sum256(data)
	s.lines = map[string]int{}
	if m := root.Content[0]; m.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(m.Content); i += 2 {
			s.lines[m.Content[i].Value] = m.Content[i].Line
			if v := m.Content[i+1]; v.Kind == yaml.MappingNode { // nested keys, e.g. template.name
				for j := 0; j+1 < len(v.Content); j += 2 {
					s.lines[m.Content[i].Value+"."+v.Content[j].Value] = v.Content[j].Line
				}
			}
		}
		scheduleLines(m, s.lines)
	}
	if err := s.Validate(); err != nil {
		return s, err
	}
	return s, nil
}

// wholeNumbers refuses a fractional value for a whole-number key: YAML
// decoding would silently cut "0.5" to 0, which for a rate means no limit.
func wholeNumbers(n *yaml.Node, file string, keys map[string]bool) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if keys[k.Value] && v.Kind == yaml.ScalarNode && v.Tag == "!!float" {
			return &SpecError{File: file, Line: v.Line, Msg: fmt.Sprintf("%s: %s is not a whole number", k.Value, v.Value)}
		}
		if err := wholeNumbers(v, file, keys); err != nil {
			return err
		}
	}
	return nil
}

var yamlLineRe = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	m := yamlLineRe.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1]) // the pattern matched digits
	return n
}

// yamlErrMsg rewrites a YAML error for the user. It never repeats a value
// from the file: the file may not be a spec at all (fanout dispatch
// /etc/shadow), and its content must not leak into an error.
func yamlErrMsg(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	msg = yamlLinePrefixRe.ReplaceAllString(msg, "")
	if m := yamlUnknownRe.FindStringSubmatch(msg); m != nil {
		where := "a spec key (known keys: " + strings.Join(specKeys(), ", ") + ")"
		if m[2] != "Spec" {
			where = "a key of " + strings.ToLower(m[2])
		}
		if !plainName(m[1]) {
			return "a field that is not " + where
		}
		return fmt.Sprintf("field %s is not %s", m[1], where)
	}
	if m := yamlUnmarshalRe.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("found %s where %s is expected", yamlKinds[m[1]], goKind(m[2]))
	}
	return yamlValueRe.ReplaceAllString(msg, "…")
}

var (
	yamlLinePrefixRe = regexp.MustCompile(`^line \d+: `)
	yamlUnknownRe    = regexp.MustCompile(`^field (.*) not found in type campaigns\.(\w+)$`)
	yamlUnmarshalRe  = regexp.MustCompile("^cannot unmarshal !!(\\w+) (?s:`.*`|.*) into (.+)$")
	yamlValueRe      = regexp.MustCompile("`[^`]*`")
	yamlKinds        = map[string]string{"str": "text", "int": "a number", "float": "a number", "bool": "true or false",
		"map": "a mapping of keys", "seq": "a list", "null": "nothing", "timestamp": "a time", "binary": "binary data"}
)

// goKind names a Go type the way a spec's author thinks of it.
func goKind(t string) string {
	switch {
	case t == "campaigns.Spec":
		return "the spec, a mapping of keys such as `channel: sms`,"
	case strings.HasPrefix(t, "campaigns."), strings.HasPrefix(t, "*campaigns."), strings.HasPrefix(t, "map"):
		return "a mapping of keys"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case t == "string":
		return "text"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "float"):
		return "a number"
	case strings.Contains(t, "time.Time"):
		return "a time (RFC 3339, e.g. 2026-12-01T18:00:00+01:00)"
	}
	return "another kind of value"
}

// plainName reports a key that is safe and useful to repeat in an error: a
// short name of letters, digits and punctuation.
func plainName(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_-.", r)) {
			return false
		}
	}
	return true
}

func specKeys() []string {
	return []string{"id", "name", "channel", "channel_id", "from", "message", "template", "subject",
		"content_type", "recipients", "format", "delimiter", "to", "default_region", "suppress", "rate", "batch_size", "at_least_once", "schedule", "notify_url",
		"fallback_template", "media_url", "template_price",
		"widget_id", "title", "url"}
}

// File is the path the spec was loaded from ("" when built in code).
func (s Spec) File() string { return s.file }

// Line returns the line of a key in the spec file, or 0: a top-level key
// ("template") or a key of a top-level mapping ("template.name"); a nested
// key that is not written falls back to its parent's line.
func (s Spec) Line(key string) int {
	if n, ok := s.lines[key]; ok {
		return n
	}
	if parent, _, nested := strings.Cut(key, "."); nested {
		return s.lines[parent]
	}
	return 0
}

// Errorf builds a SpecError located at a key, as Line finds it.
func (s Spec) Errorf(key, format string, args ...any) *SpecError {
	file := s.file
	if file == "" {
		file = "campaign spec"
	}
	return &SpecError{File: file, Line: s.Line(key), Msg: fmt.Sprintf(format, args...)}
}

// Resolve returns a path from the spec relative to the spec's folder.
func (s Spec) Resolve(p string) string {
	if p == "" || p == "-" || filepath.IsAbs(p) || s.dir == "" {
		return p
	}
	return filepath.Join(s.dir, p)
}

// RecipientsPath is the recipients file resolved against the spec's folder.
func (s Spec) RecipientsPath() string { return s.Resolve(s.Recipients) }

// Validate checks the spec and fills defaults (a generated ID, region NG).
// It reports every problem at once.
func (s *Spec) Validate() error {
	var errs SpecErrors
	add := func(key, format string, args ...any) { errs = append(errs, s.Errorf(key, format, args...)) }

	if s.ID == "" {
		s.ID = NewID()
		s.generated = true
	} else if !idPattern.MatchString(s.ID) {
		add("id", "id %q: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", s.ID)
	}
	if s.DefaultRegion == "" {
		s.DefaultRegion = "NG"
	}
	s.DefaultRegion = strings.ToUpper(s.DefaultRegion)
	if s.Channel.AddressKind() == "phone" && !phonenumbers.GetSupportedRegions()[s.DefaultRegion] {
		add("default_region", "default_region %q is not a region: use a two-letter ISO 3166 code such as NG, GH or KE", s.DefaultRegion)
	}
	errs = append(errs, s.validateSchedule()...)
	if t := s.Expiry(); t > 0 && t <= time.Now().Unix() {
		add("schedule", "schedule.expires_at %s is in the past: nothing would be sent", s.Schedule.ExpiresAt.Format(time.RFC3339))
	}
	switch s.Channel {
	case ChannelSMS:
		if s.ChannelID == "" {
			add("channel", "channel sms needs channel_id: the OneRoute SMS channel to send from")
		}
		if s.Message == "" {
			add("channel", "channel sms needs message: the text to send (a Go template, e.g. \"Hi {{.first_name}}\")")
		}
		if s.Template != nil {
			add("template", "template is for channel whatsapp_template; an SMS sends message")
		}
	case ChannelEmail:
		if s.ChannelID == "" {
			add("channel", "channel email needs channel_id: the OneRoute email channel to send from")
		}
		if s.Message == "" {
			add("channel", "channel email needs message: the email body (a Go template)")
		}
		if s.Subject == "" {
			add("channel", "channel email needs subject")
		}
		if s.Template != nil {
			add("template", "template is for channel whatsapp_template; an email sends message and subject")
		}
	case ChannelWhatsAppTemplate:
		if s.From == "" {
			add("channel", "channel whatsapp_template needs from: the business WhatsApp number connected to your OneRoute channel")
		}
		if s.Template == nil || s.Template.Name == "" {
			add("channel", "channel whatsapp_template needs template: {name: ..., parameters: [...]}")
		}
		if s.Message != "" {
			add("message", "message is not used by whatsapp_template; put the values in template.parameters")
		}
	case ChannelWhatsAppSession:
		errs = append(errs, s.validateSession()...)
	case ChannelWhatsAppCampaign:
		if s.From == "" {
			add("channel", "channel whatsapp_campaign needs from: the business WhatsApp number connected to your OneRoute channel")
		}
		if s.Template == nil || s.Template.Name == "" {
			add("channel", "channel whatsapp_campaign needs template: {name: ..., parameters: [...]}")
		}
		if s.Message != "" {
			add("message", "message is not used by whatsapp_campaign; put the values in template.parameters")
		}
	case ChannelPush:
		errs = append(errs, s.validatePush()...)
	case "":
		add("channel", "channel is missing: use one of %s", channelList())
	default:
		add("channel", "unknown channel %q: use one of %s", s.Channel, channelList())
	}
	errs = append(errs, s.validatePushKeys()...)
	errs = append(errs, s.validateSessionKeys()...)
	errs = append(errs, s.validateTemplateParts()...)
	switch {
	case s.ContentType != "" && s.ContentType != "html" && s.ContentType != "text":
		add("content_type", "content_type %q: use html or text", s.ContentType)
	case s.ContentType != "" && s.Channel != ChannelEmail:
		add("content_type", "content_type is for channel email; %s content is plain text", s.Channel)
	}
	if s.Recipients == "" {
		add("recipients", "recipients is missing: a CSV file with a header row or a JSON array of objects, relative to this spec")
	}
	if s.Format != "" && s.Format != "csv" && s.Format != "json" && s.Format != "ndjson" {
		add("format", "format %q: use csv, json or ndjson", s.Format)
	}
	if _, err := ParseDelimiter(s.Delimiter); err != nil {
		add("delimiter", "delimiter: %v", err)
	}
	if s.BatchSize < 0 || s.BatchSize > 1000 {
		add("batch_size", "batch_size %d: use 1 to 1000", s.BatchSize)
	}
	if s.NotifyURL != "" {
		if u, err := url.Parse(s.NotifyURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("notify_url", "notify_url %q: use an http:// or https:// URL", s.NotifyURL)
		}
	}
	if r := s.Rate; r != nil && (r.PerSecond < 0 || r.PerMinute < 0 || r.PerDay < 0 || r.Burst < 0) {
		add("rate", "rate limits cannot be negative")
	}
	if r := s.Rate; r != nil {
		batch := s.BatchSize
		if batch == 0 {
			batch = config.DefaultBatchSize
		}
		for name, limit := range map[string]int{"per_minute": r.PerMinute, "per_day": r.PerDay} {
			if limit > 0 && batch > limit {
				add("rate", "rate.%s (%d) is smaller than a batch (%d recipients): set batch_size to %d or less", name, limit, batch, limit)
			}
		}
	}
	if _, err := s.Compile(); err != nil {
		var se *SpecError
		if errors.As(err, &se) {
			errs = append(errs, se)
		} else {
			add("message", "%v", err)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func channelList() string {
	names := make([]string, len(Channels))
	for i, c := range Channels {
		names[i] = string(c)
	}
	return strings.Join(names, ", ")
}

// SetID sets the campaign id chosen by the user (a flag), which DeriveID
// then keeps.
func (s *Spec) SetID(id string) { s.ID, s.generated = id, false }

// IDGenerated reports whether the spec had no id and got a random one.
func (s Spec) IDGenerated() bool { return s.generated }

// DeriveID replaces a generated id with one derived from the spec file's
// bytes and parts (the recipient file's path, size and modification time),
// so that dispatching the same spec and file again resumes the same
// campaign instead of sending it twice. An id written in the spec or given
// by flag is never replaced.
func (s *Spec) DeriveID(parts ...string) {
	if !s.generated {
		return
	}
	h := sha256.New()
	h.Write(s.digest[:])
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	s.ID = "c-" + hex.EncodeToString(h.Sum(nil)[:8])
}

// NewID returns a fresh campaign id: a UTC timestamp and random suffix, so ids
// sort by creation.
func NewID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "c-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// ParseDelimiter reads a CSV delimiter as a spec or flag gives it: one
// character (",", ";", "|"), or "tab" or "\t". "" is the default (0).
func ParseDelimiter(s string) (rune, error) {
	switch s {
	case "":
		return 0, nil
	case "tab", `\t`, "\t":
		return '\t', nil
	}
	r, size := utf8.DecodeRuneInString(s)
	if size != len(s) || r == utf8.RuneError {
		return 0, fmt.Errorf("%q is not one character; use e.g. \",\", \";\", \"|\" or \"tab\"", s)
	}
	if r == '"' || r == '\r' || r == '\n' || r == '\uFFFD' || unicode.IsLetter(r) || unicode.IsDigit(r) {
		return 0, fmt.Errorf("%q cannot separate CSV fields; use e.g. \",\", \";\", \"|\" or \"tab\"", s)
	}
	return r, nil
}
