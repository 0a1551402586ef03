package campaigns

import (
	"net/url"
	"strings"
)

// ChannelPush sends an Embed push notification (POST
// /api/public/embed/push) to each customer of a live-chat widget
// (widget_id), known by their customer id or email address. Each recipient
// gets one request with title, message and the optional url, all templates
// over the recipient's columns. Push is not tracked: OneRoute reports no
// delivery status, so a campaign completes once every recipient is sent.
const ChannelPush Channel = "push"

// The recipient columns a push campaign reads the customer from, in order
// of preference: customer_id wins over email when a file has both.
var PushColumns = []string{"customer_id", "email", "email_address", "to"}

// PushByEmail reports whether a push recipient's address (Item.To) is an
// email address rather than a customer id: it holds an '@'.
func PushByEmail(to string) bool { return strings.Contains(to, "@") }

// validatePush checks a push spec.
func (s *Spec) validatePush() SpecErrors {
	var errs SpecErrors
	add := func(key, format string, args ...any) { errs = append(errs, s.Errorf(key, format, args...)) }
	if s.WidgetID == "" {
		add("channel", "channel push needs widget_id: the OneRoute live-chat widget whose customers get the notification")
	}
	if s.Title == "" {
		add("channel", "channel push needs title: the notification's title (a Go template, e.g. \"Hi {{.first_name}}\")")
	}
	if s.Message == "" {
		add("channel", "channel push needs message: the notification's text (a Go template)")
	}
	if s.Template != nil {
		add("template", "template is for channel whatsapp_template; a push sends title and message")
	}
	if s.ChannelID != "" {
		add("channel_id", "channel_id is not used by push; name the widget in widget_id")
	}
	if s.Subject != "" {
		add("subject", "subject is for channel email; a push notification has a title")
	}
	if s.URL != "" && !strings.Contains(s.URL, "{{") {
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("url", "url %q: use an http:// or https:// URL (a Go template is allowed)", s.URL)
		}
	}
	return errs
}

// validatePushKeys refuses the push keys in a spec of another channel.
func (s *Spec) validatePushKeys() SpecErrors {
	if s.Channel == ChannelPush {
		return nil
	}
	var errs SpecErrors
	for _, k := range []struct {
		key string
		set bool
	}{{"widget_id", s.WidgetID != ""}, {"title", s.Title != ""}, {"url", s.URL != ""}} {
		if k.set {
			errs = append(errs, s.Errorf(k.key, "%s is for channel push", k.key))
		}
	}
	return errs
}
