package campaigns_test

import (
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
)

// A whatsapp_session spec needs from, message and fallback_template; a
// missing or misplaced key is refused with its line, and media_url is
// checked (https, no private address) when the spec is loaded.
func TestSessionSpec(t *testing.T) {
	t.Parallel()
	const good = "channel: whatsapp_session\nfrom: \"2348000000001\"\nmessage: Hi {{.name}}\n" +
		"fallback_template:\n  name: order_update\n  language: en\n  parameters: [\"{{.name}}\"]\nrecipients: r.csv\n"
	s, err := campaigns.ParseSpec("c.yaml", []byte(good+"media_url: https://cdn.example.com/a.jpg\ntemplate_price: 0.0125\n"))
	if err != nil {
		t.Fatalf("a good spec: %v", err)
	}
	if tpl := s.SessionTemplate(); tpl == nil || tpl.Name != "order_update" || tpl.Language != "en" {
		t.Fatalf("SessionTemplate() = %+v", tpl)
	}
	r, err := s.Compile()
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Render(map[string]string{"name": "Ada"})
	if err != nil || c.Text != "Hi Ada" || len(c.Params) != 1 || c.Params[0] != "Ada" {
		t.Fatalf("Render = %+v, %v; want the message and the fallback template's parameters", c, err)
	}
	if _, err := r.Render(map[string]string{"name": strings.Repeat("x", 2000)}); err == nil || !strings.Contains(err.Error(), "fallback_template.parameters[0]") {
		t.Errorf("a parameter over WhatsApp's cap: %v, want it named fallback_template.parameters[0]", err)
	}
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"no fallback", "channel: whatsapp_session\nfrom: \"2348000000001\"\nmessage: hi\nrecipients: r.csv\n",
			"c.yaml:1: channel whatsapp_session needs fallback_template"},
		{"no message", "channel: whatsapp_session\nfrom: \"2348000000001\"\nfallback_template: {name: x}\nrecipients: r.csv\n",
			"c.yaml:1: channel whatsapp_session needs message"},
		{"no from", "channel: whatsapp_session\nmessage: hi\nfallback_template: {name: x}\nrecipients: r.csv\n",
			"c.yaml:1: channel whatsapp_session needs from"},
		{"template instead", "channel: whatsapp_session\nfrom: \"1\"\nmessage: hi\ntemplate: {name: x}\nrecipients: r.csv\n",
			"c.yaml:4: template is not used by whatsapp_session"},
		{"loopback media", good + "media_url: https://127.0.0.1/a.jpg\n", "c.yaml:9: media URL https://127.0.0.1/a.jpg refused: the host is a loopback address"},
		{"metadata media", good + "media_url: https://169.254.169.254/latest\n", "the cloud metadata address"},
		{"http media", good + "media_url: http://cdn.example.com/a.jpg\n", "only https links are allowed"},
		{"negative price", good + "template_price: -1\n", "c.yaml:9: template_price cannot be negative"},
		{"empty parameter", strings.Replace(good, `["{{.name}}"]`, `[""]`, 1), "fallback_template.parameters[0] is empty"},
		{"fallback on sms", "channel: sms\nchannel_id: x\nmessage: hi\nfallback_template: {name: x}\nrecipients: r.csv\n",
			"c.yaml:4: fallback_template is for channel whatsapp_session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.ParseSpec("c.yaml", []byte(tc.spec))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// The example loads as documented.
func TestSessionExample(t *testing.T) {
	t.Parallel()
	s, err := campaigns.LoadSpec("../examples/whatsapp-session.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Channel != campaigns.ChannelWhatsAppSession || s.FallbackTemplate == nil || s.TemplatePrice != 0.0125 {
		t.Fatalf("example: channel %s fallback %+v price %v", s.Channel, s.FallbackTemplate, s.TemplatePrice)
	}
}
