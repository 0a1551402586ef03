package campaigns

import (
	"github.com/fanoutdev/fanout/media"
)

// ChannelWhatsAppSession sends each recipient whose WhatsApp session window
// is open a free-form session message (message, optionally media_url), and
// everyone else the fallback_template (OneRoute's FAQ, oneroute-api.md
// §3.6: inside the 24 hours after a customer last wrote a business may send
// session messages; outside, only approved templates, charged per message).
const ChannelWhatsAppSession Channel = "whatsapp_session"

// Routes of a whatsapp_session recipient: the session message or the
// fallback template.
const (
	RouteSession  = "s"
	RouteTemplate = "t"
)

// paramsTemplate is the template whose parameters the renderer compiles,
// and its spec key: fallback_template for whatsapp_session, else template.
func (s Spec) paramsTemplate() (*Template, string) {
	if s.Channel == ChannelWhatsAppSession {
		return s.FallbackTemplate, "fallback_template"
	}
	return s.Template, "template"
}

// SessionTemplate is the template a batch of the spec names: the fallback
// template of a whatsapp_session campaign, else template (nil: none).
func (s Spec) SessionTemplate() *Template {
	t, _ := s.paramsTemplate()
	return t
}

// validateSession checks a whatsapp_session spec.
func (s *Spec) validateSession() SpecErrors {
	var errs SpecErrors
	add := func(key, format string, args ...any) { errs = append(errs, s.Errorf(key, format, args...)) }
	if s.From == "" {
		add("channel", "channel whatsapp_session needs from: the business WhatsApp number connected to your OneRoute channel")
	}
	if s.Message == "" {
		add("channel", "channel whatsapp_session needs message: the session message's text (a Go template, e.g. \"Hi {{.first_name}}\")")
	}
	if s.FallbackTemplate == nil || s.FallbackTemplate.Name == "" {
		add("channel", "channel whatsapp_session needs fallback_template: {name: ..., language: ..., parameters: [...]}, sent to recipients whose session window is closed")
	}
	if s.Template != nil {
		add("template", "template is not used by whatsapp_session; name the template for closed windows in fallback_template")
	}
	if s.MediaURL != "" {
		if err := media.Check(s.MediaURL, media.Options{}); err != nil {
			add("media_url", "%v", err)
		}
	}
	if s.TemplatePrice < 0 {
		add("template_price", "template_price cannot be negative")
	}
	return errs
}

// validateSessionKeys refuses the whatsapp_session keys in a spec of
// another channel.
func (s *Spec) validateSessionKeys() SpecErrors {
	if s.Channel == ChannelWhatsAppSession {
		return nil
	}
	var errs SpecErrors
	for _, k := range []struct {
		key string
		set bool
	}{{"fallback_template", s.FallbackTemplate != nil}, {"media_url", s.MediaURL != ""}, {"template_price", s.TemplatePrice != 0}} {
		if k.set {
			errs = append(errs, s.Errorf(k.key, "%s is for channel whatsapp_session", k.key))
		}
	}
	return errs
}

// paramsKey is the spec key of the template parameters the renderer
// renders.
func (r *Renderer) paramsKey() string {
	if r.channel == ChannelWhatsAppSession {
		return "fallback_template"
	}
	return "template"
}
