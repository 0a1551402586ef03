package campaigns_test

import (
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
)

func emailYAML(contentType, message string) string {
	y := "channel: email\nchannel_id: x\nrecipients: r.csv\nsubject: 'Hi {{.name}}'\nmessage: '" + strings.ReplaceAll(message, "'", "''") + "'\n"
	if contentType != "" {
		y += "content_type: " + contentType + "\n"
	}
	return y
}

func renderEmail(t *testing.T, contentType, message string, fields map[string]string) campaigns.Content {
	t.Helper()
	spec, err := campaigns.ParseSpec("c.yaml", []byte(emailYAML(contentType, message)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := spec.Compile()
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Render(fields)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An HTML email escapes each recipient field for where it lands: markup in
// a name shows as text, a javascript: link is neutralised; a text email
// (and every subject) keeps the value as it is.
func TestHTMLEmailEscapesRecipientFields(t *testing.T) {
	t.Parallel()
	evil := map[string]string{"name": `<a href=x>y</a>`, "link": "javascript:alert(1)"}
	for _, tc := range []struct {
		name, contentType, message, want string
	}{
		{"detected html", "", `<p>Hi {{.name}}</p><a href="{{.link}}">offer</a>`,
			`<p>Hi &lt;a href=x&gt;y&lt;/a&gt;</p><a href="#ZgotmplZ">offer</a>`},
		{"declared html", "html", `Hi {{.name}} ({{.link}})`, `Hi &lt;a href=x&gt;y&lt;/a&gt; (javascript:alert(1))`},
		{"attribute", "html", `<img alt="{{.name}}">`, `<img alt="&lt;a href=x&gt;y&lt;/a&gt;">`},
		{"declared text", "text", `<p>Hi {{.name}}</p>`, `<p>Hi <a href=x>y</a></p>`},
		{"detected text", "", `Hi {{.name}}`, `Hi <a href=x>y</a>`},
	} {
		c := renderEmail(t, tc.contentType, tc.message, evil)
		if c.Text != tc.want {
			t.Errorf("%s: body %q, want %q", tc.name, c.Text, tc.want)
		}
		if c.Subject != "Hi <a href=x>y</a>" {
			t.Errorf("%s: subject %q, want the plain text", tc.name, c.Subject)
		}
	}
}

// The restricted language is the same for HTML bodies: what text bodies
// refuse, HTML bodies refuse, at load, with the key; content_type is
// checked too.
func TestHTMLEmailKeepsTheRestrictions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, yaml, want string }{
		{"range", emailYAML("html", `<p>{{range .}}x{{end}}</p>`), "{{range}} is not allowed"},
		{"html func", emailYAML("html", `<p>{{html .name}}</p>`), "function html is not allowed"},
		{"define", emailYAML("html", `<p>{{define "x"}}y{{end}}</p>`), "{{define}} and {{block}} are not allowed"},
		{"branches end apart", emailYAML("html", `{{if .name}}<a href="{{end}}x">y</a>`), "branches end in different contexts"},
		{"bad type", emailYAML("markdown", `Hi`), `content_type "markdown": use html or text`},
		{"not email", smsYAML("Hi") + "content_type: html\n", "content_type is for channel email"},
	} {
		_, err := campaigns.ParseSpec("c.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

// The default content type follows the documented rule: html when the body
// holds a tag, text otherwise.
func TestLooksLikeHTML(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]bool{
		"<p>Hi</p>": true, "Hi<br/>there": true, `<a href="x">y</a>`: true, "</b>": true, "<!DOCTYPE html><html>": true,
		"<table class=x>": true, "Hi {{.name}}": false, "3 < 5 and 7 > 6": false, "I <3 you": false, "a <> b": false,
		"{{if lt .n 3}}few{{end}}": false,
	} {
		if got := campaigns.LooksLikeHTML(body); got != want {
			t.Errorf("LooksLikeHTML(%q) = %v, want %v", body, got, want)
		}
	}
}
