package campaigns

import (
	"fmt"
	"strings"

	"github.com/fanoutdev/fanout/media"
)

// TemplateHeader is the value of a WhatsApp template's header: a media link
// for an IMAGE, DOCUMENT or VIDEO header, or the parameter of a TEXT
// header. URL and Text are Go templates over the recipient's fields, like
// parameters; a fixed URL is checked (media.Check) when the spec loads, a
// rendered one for each recipient.
type TemplateHeader struct {
	// Type is image, document, video or text.
	Type string `yaml:"type" json:"type"`
	// URL is the media link (image, document, video).
	URL string `yaml:"url" json:"url,omitempty"`
	// Text is the header's parameter (text).
	Text string `yaml:"text" json:"text,omitempty"`
}

// TemplateButton is the value of one of a template's buttons that takes
// one, in the template's order: a quick reply's payload, a URL button's
// suffix parameter (its {{1}}) or a copy-code button's code. Values are Go
// templates over the recipient's fields.
type TemplateButton struct {
	// Type is quick_reply, url or copy_code.
	Type string `yaml:"type" json:"type"`
	// Payload is a quick_reply button's payload.
	Payload string `yaml:"payload" json:"payload,omitempty"`
	// Parameter is a url button's suffix or a copy_code button's code.
	Parameter string `yaml:"parameter" json:"parameter,omitempty"`
}

// Header types and button types of a spec.
const (
	HeaderImage    = "image"
	HeaderDocument = "document"
	HeaderVideo    = "video"
	HeaderText     = "text"

	ButtonQuickReply = "quick_reply"
	ButtonURL        = "url"
	ButtonCopyCode   = "copy_code"
)

// MaxButtons is the most buttons a WhatsApp template has.
const MaxButtons = 10

// IsMedia reports whether the header links media.
func (h *TemplateHeader) IsMedia() bool {
	return h != nil && (h.Type == HeaderImage || h.Type == HeaderDocument || h.Type == HeaderVideo)
}

// value is the header's templated value: its URL or its text.
func (h *TemplateHeader) value() string {
	if h.IsMedia() {
		return h.URL
	}
	return h.Text
}

// Value is the button's templated value: its payload or its parameter.
func (b TemplateButton) Value() string {
	if b.Type == ButtonQuickReply {
		return b.Payload
	}
	return b.Parameter
}

// FixedMediaURL is the spec's header media link when it is the same for
// every recipient (no template action), else "".
func (t *Template) FixedMediaURL() string {
	if t == nil || !t.Header.IsMedia() || strings.Contains(t.Header.URL, "{{") {
		return ""
	}
	return t.Header.URL
}

// validateTemplateParts checks the header and buttons of the spec's
// template (fallback_template for whatsapp_session).
func (s *Spec) validateTemplateParts() SpecErrors {
	t, key := s.paramsTemplate()
	if t == nil {
		return nil
	}
	var errs SpecErrors
	add := func(k, format string, args ...any) { errs = append(errs, s.Errorf(k, format, args...)) }
	if h := t.Header; h != nil {
		hk := key + ".header"
		switch h.Type {
		case HeaderImage, HeaderDocument, HeaderVideo:
			switch {
			case h.URL == "":
				add(hk, "%s: a %s header needs url: the link WhatsApp fetches the %s from (https)", hk, h.Type, h.Type)
			case h.Text != "":
				add(hk, "%s: a %s header has a url, not text", hk, h.Type)
			case !strings.Contains(h.URL, "{{"):
				if err := media.Check(h.URL, media.Options{}); err != nil {
					add(hk, "%s.url: %v", hk, err)
				}
			}
		case HeaderText:
			if h.Text == "" {
				add(hk, "%s: a text header needs text: the value of the header's {{1}}", hk)
			}
			if h.URL != "" {
				add(hk, "%s: a text header has text, not url", hk)
			}
		case "":
			add(hk, "%s needs type: image, document, video or text, as the template's header", hk)
		default:
			add(hk, "%s.type %q: use image, document, video or text, as the template's header", hk, h.Type)
		}
	}
	bk := key + ".buttons"
	if len(t.Buttons) > MaxButtons {
		add(bk, "%s: %d buttons, a template has at most %d", bk, len(t.Buttons), MaxButtons)
	}
	for i, b := range t.Buttons {
		name := fmt.Sprintf("%s[%d]", bk, i)
		switch b.Type {
		case ButtonQuickReply:
			if b.Payload == "" {
				add(bk, "%s: a quick_reply button needs payload: what comes back when the recipient taps it", name)
			}
			if b.Parameter != "" {
				add(bk, "%s: a quick_reply button has payload, not parameter", name)
			}
		case ButtonURL, ButtonCopyCode:
			if b.Parameter == "" {
				add(bk, "%s: a %s button needs parameter: the value of its {{1}}", name, b.Type)
			}
			if b.Payload != "" {
				add(bk, "%s: a %s button has parameter, not payload", name, b.Type)
			}
		case "":
			add(bk, "%s needs type: quick_reply, url or copy_code", name)
		default:
			add(bk, "%s.type %q: use quick_reply, url or copy_code", name, b.Type)
		}
	}
	return errs
}
