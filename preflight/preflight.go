// Package preflight checks a campaign spec against the OneRoute account
// before anything is enqueued: that its channel exists and has the spec's
// medium, that a WhatsApp from number is a WhatsApp channel, and that its
// template exists, is approved, is in the spec's language and takes as many
// parameters as the spec gives. Without it these mistakes surface only at
// the first send, after every recipient is enqueued.
//
// Usage:
//
//	err := preflight.Check(ctx, spec, client) // client is a *oneroute.Client
//	var findings campaigns.SpecErrors
//	switch {
//	case errors.As(err, &findings): // the spec is wrong: each finding names its line and the fix
//	case err != nil:                // OneRoute could not be asked
//	}
package preflight

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
)

// Timeout bounds a whole Check.
const Timeout = 10 * time.Second

// Catalog is what Check reads from OneRoute: the account's channels of a
// medium and a WhatsApp channel's templates.
type Catalog interface {
	FetchChannels(ctx context.Context, medium string) ([]oneroute.Channel, error)
	FetchTemplates(ctx context.Context, channelID string) ([]oneroute.Template, error)
}

var _ Catalog = (*oneroute.Client)(nil)

// Media are the channel media, in the order fanout lists them.
var Media = []string{oneroute.MediumSMS, oneroute.MediumWhatsApp, oneroute.MediumEmail}

// Medium returns the OneRoute medium a spec's channel sends through: sms,
// whatsapp or email; "" for an unknown channel.
func Medium(c campaigns.Channel) string {
	switch c {
	case campaigns.ChannelSMS:
		return oneroute.MediumSMS
	case campaigns.ChannelWhatsAppTemplate, campaigns.ChannelWhatsAppSession, campaigns.ChannelWhatsAppCampaign:
		return oneroute.MediumWhatsApp
	case campaigns.ChannelEmail:
		return oneroute.MediumEmail
	}
	return ""
}

// Check asks OneRoute (through cat, within Timeout) whether spec names
// what the account has. Every problem found is returned at once as
// campaigns.SpecErrors, each naming the spec's line, the fix and the
// choices there are. Any other error means OneRoute could not be asked
// (down, a wrong key): the spec was not checked.
func Check(ctx context.Context, spec campaigns.Spec, cat Catalog) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	c := &checker{spec: spec, cat: cat, lists: map[string][]oneroute.Channel{}}
	var err error
	switch spec.Channel {
	case campaigns.ChannelSMS, campaigns.ChannelEmail:
		_, err = c.channelByID(ctx, Medium(spec.Channel))
	case campaigns.ChannelWhatsAppTemplate, campaigns.ChannelWhatsAppCampaign:
		var ch *oneroute.Channel
		if ch, err = c.whatsAppFrom(ctx); err == nil && ch != nil {
			err = c.template(ctx, *ch)
		}
	case campaigns.ChannelWhatsAppSession:
		// The fallback template is checked as a template campaign's is.
		c.spec.Template = spec.FallbackTemplate
		var ch *oneroute.Channel
		if ch, err = c.whatsAppFrom(ctx); err == nil && ch != nil && spec.FallbackTemplate != nil {
			err = c.template(ctx, *ch)
		}
	}
	if err != nil {
		return fmt.Errorf("preflight of %s against OneRoute: %w", spec.ID, err)
	}
	if len(c.findings) > 0 {
		return c.findings
	}
	return nil
}

// checker holds one Check's findings and the channel lists read so far.
type checker struct {
	spec     campaigns.Spec
	cat      Catalog
	lists    map[string][]oneroute.Channel
	findings campaigns.SpecErrors
}

func (c *checker) add(key, format string, args ...any) {
	c.findings = append(c.findings, c.spec.Errorf(key, format, args...))
}

// channels lists the account's channels of a medium, once per Check.
func (c *checker) channels(ctx context.Context, medium string) ([]oneroute.Channel, error) {
	if l, ok := c.lists[medium]; ok {
		return l, nil
	}
	var l []oneroute.Channel
	err := retryRead(ctx, func() (err error) { l, err = c.cat.FetchChannels(ctx, medium); return err })
	if err != nil {
		return nil, err
	}
	c.lists[medium] = l
	return l, nil
}

// channelByID finds the spec's channel_id among the channels of medium;
// when it is not there, it says whether it is a channel of another medium
// and lists those of medium.
func (c *checker) channelByID(ctx context.Context, medium string) (*oneroute.Channel, error) {
	id := c.spec.ChannelID
	own, err := c.channels(ctx, medium)
	if err != nil {
		return nil, err
	}
	for i := range own {
		if own[i].ID == id {
			return &own[i], nil
		}
	}
	for _, m := range Media {
		if m == medium {
			continue
		}
		other, err := c.channels(ctx, m)
		if err != nil {
			return nil, err
		}
		for _, ch := range other {
			if ch.ID == id {
				c.add("channel_id", "channel_id %s is %s channel, not %s one: use %s", id, article(m), article(medium), choices(medium, own))
				return nil, nil
			}
		}
	}
	c.add("channel_id", "channel_id %s is not a channel of this OneRoute account: use %s", id, choices(medium, own))
	return nil, nil
}

// whatsAppFrom finds the WhatsApp channel whose business number is the
// spec's from.
func (c *checker) whatsAppFrom(ctx context.Context) (*oneroute.Channel, error) {
	from := oneroute.Phone(c.spec.From)
	own, err := c.channels(ctx, oneroute.MediumWhatsApp)
	if err != nil {
		return nil, err
	}
	for i := range own {
		if own[i].Phone != nil && oneroute.Phone(*own[i].Phone) == from {
			return &own[i], nil
		}
	}
	c.add("from", "from %s is not the number of a WhatsApp channel of this OneRoute account: use %s", c.spec.From, choices(oneroute.MediumWhatsApp, own))
	return nil, nil
}

// template checks the spec's template against the channel's: it exists,
// is approved, is in the spec's language, takes as many parameters as the
// spec gives, and the spec's header and buttons fit its definition.
func (c *checker) template(ctx context.Context, ch oneroute.Channel) error {
	ref := c.spec.Template
	if ref == nil {
		return nil // Validate refused the spec already
	}
	var list []oneroute.Template
	err := retryRead(ctx, func() (err error) { list, err = c.cat.FetchTemplates(ctx, ch.ID); return err })
	if err != nil {
		return err
	}
	var named, approved []oneroute.Template
	for _, t := range list {
		if t.Name == ref.Name {
			named = append(named, t)
			if t.Approved() {
				approved = append(approved, t)
			}
		}
	}
	lang := ref.Language
	if lang == "" {
		lang = oneroute.DefaultLanguage
	}
	switch {
	case len(named) == 0:
		c.add("template.name", "template %s is not a template of WhatsApp number %s: use one of its approved templates: %s", ref.Name, phoneOf(ch), templateChoices(list))
		return nil
	case len(approved) == 0:
		c.add("template.name", "template %s is %s, not approved: it cannot be sent until WhatsApp approves it; use an approved template: %s", ref.Name, named[0].Status, templateChoices(list))
		return nil
	}
	var t *oneroute.Template
	var locales []string
	for i := range approved {
		locales = append(locales, approved[i].Locale)
		if t == nil && approved[i].HasLanguage(ref.Language) {
			t = &approved[i]
		}
	}
	if t == nil {
		key, fix := "template.language", "set template.language to "+strings.Join(locales, " or ")
		if ref.Language == "" {
			key, fix = "template.name", "add language: "+locales[0]+" under template (en is assumed without it)"
		}
		c.add(key, "template %s has no %s version (it is in %s): %s", ref.Name, lang, strings.Join(locales, ", "), fix)
		return nil
	}
	c.templateParts(ref, *t)
	if want, got := t.Placeholders(), len(ref.Parameters); want != got {
		c.add("template.parameters", "template %s takes %s (its body: %q), the spec gives %d: make template.parameters a list of %d",
			ref.Name, plural(want, "parameter", "parameters"), t.Body, got, want)
	}
	return nil
}

// article writes a medium with its article: "an sms", "a whatsapp", "an email".
func article(medium string) string {
	if medium == oneroute.MediumWhatsApp {
		return "a " + medium
	}
	return "an " + medium
}

// choices lists the channels a spec can name for medium, or says there are
// none.
func choices(medium string, list []oneroute.Channel) string {
	if len(list) == 0 {
		return fmt.Sprintf("none: this account has no %s channel (see them with: fanout channels)", medium)
	}
	names := make([]string, len(list))
	for i, ch := range list {
		names[i] = Describe(ch)
	}
	what := medium + " channels"
	if medium == oneroute.MediumWhatsApp {
		what = "whatsapp numbers"
	}
	return what + ": " + strings.Join(names, ", ")
}

// Describe names a channel as a spec names it, with what tells it apart:
// a WhatsApp channel by its number, others by id and sender or address.
func Describe(ch oneroute.Channel) string {
	if strings.EqualFold(ch.Medium, oneroute.MediumWhatsApp) {
		return phoneOf(ch) + " (channel " + ch.ID + ")"
	}
	if s := Sender(ch); s != "" {
		return ch.ID + " (" + s + ")"
	}
	return ch.ID
}

// Sender is what a channel sends as: a WhatsApp number, an SMS sender id
// or an email address.
func Sender(ch oneroute.Channel) string {
	switch {
	case strings.EqualFold(ch.Medium, oneroute.MediumWhatsApp):
		return phoneOf(ch)
	case strings.EqualFold(ch.Medium, oneroute.MediumEmail):
		if addr, ok := ch.Credentials["email"].(string); ok && addr != "" {
			return addr
		}
	}
	return ch.Identifier
}

func phoneOf(ch oneroute.Channel) string {
	if ch.Phone == nil {
		return ""
	}
	return *ch.Phone
}

// templateChoices lists the templates a spec can send (approved) with their
// language and parameter count.
func templateChoices(list []oneroute.Template) string {
	var names []string
	for _, t := range list {
		if t.Approved() {
			names = append(names, fmt.Sprintf("%s (%s, %s)", t.Name, t.Locale, plural(t.Placeholders(), "parameter", "parameters")))
		}
	}
	if len(names) == 0 {
		return "none is approved yet"
	}
	return strings.Join(names, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// IsFinding reports whether err is a problem of the spec (its findings),
// not a failure to ask OneRoute.
func IsFinding(err error) bool {
	var es campaigns.SpecErrors
	return errors.As(err, &es)
}

// readAttempts is how many times a catalog read is tried when OneRoute's
// answer says it may work again (a 5xx, a 429, a lost answer): reads
// change nothing, so trying again is safe, and one passing fault must not
// refuse a whole dispatch.
const readAttempts = 4

// retryRead runs read until it succeeds, fails for good, or readAttempts
// ran out, waiting 250 ms, 500 ms, 1 s between tries (a 429's Retry-After
// when longer, up to 2 s), within ctx.
func retryRead(ctx context.Context, read func() error) error {
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := read()
		switch oneroute.Classify(err) {
		case oneroute.Temporary, oneroute.Ambiguous, oneroute.Throttled:
		default:
			return err
		}
		if attempt == readAttempts {
			return err
		}
		d := wait
		if ra := oneroute.RetryAfter(err); ra > d {
			d = min(ra, 2*time.Second)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
		wait *= 2
	}
}
