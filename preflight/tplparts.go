package preflight

import (
	"fmt"
	"strings"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
)

// templateKey is the spec key of the template Check checks:
// fallback_template for whatsapp_session, else template.
func (c *checker) templateKey() string {
	if c.spec.Channel == campaigns.ChannelWhatsAppSession {
		return "fallback_template"
	}
	return "template"
}

// templateParts checks the spec's template header and buttons against the
// template's HEADER and BUTTONS components: a header of the same type
// exactly when the template's header takes a value, and one button value
// per button taking one, of the same kind and in the same order.
func (c *checker) templateParts(ref *campaigns.Template, t oneroute.Template) {
	key := c.templateKey()
	hk, bk := key+".header", key+".buttons"
	format, needs := t.HeaderFormat(), t.HeaderValue()
	switch h := ref.Header; {
	case needs && h == nil:
		what := anArticle(format) + " header: add header: {type: " + format + ", url: https://...} under " + key
		if format == "text" {
			what = "a text header with a {{1}}: add header: {type: text, text: ...} under " + key
		}
		c.add(key+".name", "template %s has %s", ref.Name, what)
	case !needs && h != nil && format == "":
		c.add(hk, "template %s has no header: remove %s", ref.Name, hk)
	case !needs && h != nil:
		c.add(hk, "template %s has a fixed %s header that takes no value: remove %s", ref.Name, format, hk)
	case needs && h.Type != format:
		c.add(hk, "%s.type is %s but template %s has %s header: set type: %s (with %s)", hk, h.Type, ref.Name, anArticle(format), format, headerKey(format))
	}
	kinds := t.ButtonKinds()
	if len(kinds) != len(ref.Buttons) {
		k := bk
		if len(ref.Buttons) == 0 {
			k = key + ".name"
		}
		c.add(k, "template %s has %s taking a value (%s), the spec gives %d: make %s a list of %d in that order",
			ref.Name, plural(len(kinds), "button", "buttons"), kindList(kinds), len(ref.Buttons), bk, len(kinds))
		return
	}
	for i, k := range kinds {
		if ref.Buttons[i].Type != k {
			c.add(bk, "%s[%d] is %s but button %d of template %s is %s: the buttons' order is %s",
				bk, i, ref.Buttons[i].Type, i+1, ref.Name, kindName(k), kindList(kinds))
			return
		}
	}
}

func headerKey(format string) string {
	if format == "text" {
		return "text"
	}
	return "url"
}

func kindName(k string) string {
	switch k {
	case oneroute.ButtonQuickReply:
		return "a quick_reply (payload)"
	case oneroute.ButtonURL:
		return "a url with a {{1}} suffix (parameter)"
	default:
		return "a copy_code (parameter)"
	}
}

func kindList(kinds []string) string {
	if len(kinds) == 0 {
		return "none"
	}
	return fmt.Sprint(strings.Join(kinds, ", "))
}

// anArticle writes a header format with its article: "an image", "a video".
func anArticle(format string) string {
	if strings.ContainsRune("aeiou", rune(format[0])) {
		return "an " + format
	}
	return "a " + format
}
