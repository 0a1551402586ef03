package campaigns_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/media"
)

const tplSpec = "channel: whatsapp_template\nfrom: \"2348000000001\"\nrecipients: r.csv\ntemplate:\n  name: order_shipped\n  parameters: [\"{{.name}}\"]\n"

// A template's header and buttons render per recipient beside its
// parameters; a templated media link is checked for each recipient.
func TestTemplatePartsRender(t *testing.T) {
	t.Parallel()
	s, err := campaigns.ParseSpec("c.yaml", []byte(tplSpec+
		"  header: {type: image, url: \"https://cdn.example.com/{{.sku}}.jpg\"}\n"+
		"  buttons:\n    - {type: quick_reply, payload: \"stop-{{.name}}\"}\n    - {type: url, parameter: \"{{.code}}\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Compile()
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Render(map[string]string{"name": "Ada", "sku": "a1", "code": "XY9"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Header != "https://cdn.example.com/a1.jpg" || strings.Join(c.Buttons, ",") != "stop-Ada,XY9" || c.Params[0] != "Ada" {
		t.Fatalf("Render = %+v", c)
	}

	s, err = campaigns.ParseSpec("c.yaml", []byte(tplSpec+"  header: {type: document, url: \"{{.link}}\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err = s.Compile(); err != nil {
		t.Fatal(err)
	}
	if c, err := r.Render(map[string]string{"name": "Ada", "link": "https://cdn.example.com/a.pdf"}); err != nil || c.Header != "https://cdn.example.com/a.pdf" {
		t.Fatalf("a public link: %+v, %v", c, err)
	}
	for _, bad := range []string{"https://127.0.0.1/a.pdf", "https://169.254.169.254/latest", "http://cdn.example.com/a.pdf"} {
		_, err := r.Render(map[string]string{"name": "Ada", "link": bad})
		var re *campaigns.RenderError
		if !errors.As(err, &re) || !errors.Is(err, media.ErrRefused) || re.Key != "template.header" {
			t.Errorf("link %s: %v, want a RenderError refusing the row at template.header", bad, err)
		}
	}
}

// Wrong header and button keys are refused with their line and the fix.
func TestTemplatePartsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, add, want string
	}{
		{"header type", "  header: {type: gif, url: \"https://cdn.example.com/a.gif\"}\n", `c.yaml:7: template.header.type "gif": use image, document, video or text`},
		{"header no url", "  header: {type: image}\n", "c.yaml:7: template.header: a image header needs url"},
		{"header loopback", "  header: {type: video, url: \"https://127.0.0.1/a.mp4\"}\n", "c.yaml:7: template.header.url: media URL https://127.0.0.1/a.mp4 refused: the host is a loopback address"},
		{"header text with url", "  header: {type: text, text: hi, url: \"https://cdn.example.com/a\"}\n", "c.yaml:7: template.header: a text header has text, not url"},
		{"button type", "  buttons: [{type: call, parameter: x}]\n", `c.yaml:7: template.buttons[0].type "call": use quick_reply, url or copy_code`},
		{"quick reply no payload", "  buttons: [{type: quick_reply}]\n", "c.yaml:7: template.buttons[0]: a quick_reply button needs payload"},
		{"url no parameter", "  buttons: [{type: quick_reply, payload: a}, {type: url, payload: x}]\n", "c.yaml:7: template.buttons[1]: a url button needs parameter"},
		{"bad button template", "  buttons: [{type: url, parameter: \"{{.code\"}]\n", "c.yaml:7: template.buttons[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.ParseSpec("c.yaml", []byte(tplSpec+tc.add))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
