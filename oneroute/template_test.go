package oneroute

import (
	"encoding/json"
	"strings"
	"testing"
)

// Placeholders counts what a send must fill: distinct numbered
// placeholders, from the body or, without one, the BODY component.
func TestTemplatePlaceholders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		tmpl Template
		want int
	}{
		{"none", Template{Body: "Hello there"}, 0},
		{"one", Template{Body: "Hi {{1}}!"}, 1},
		{"two", Template{Body: "Hi {{1}}, order {{2}} shipped"}, 2},
		{"repeated counts once", Template{Body: "{{1}} and {{1}} again, {{ 2 }}"}, 2},
		{"named OTP fields are not numbered", Template{Body: "Your {{firm}} code is {{otp}}"}, 0},
		{"from the BODY component", Template{Components: json.RawMessage(`[{"type":"HEADER","text":"{{1}}"},{"type":"BODY","text":"A {{1}} B {{2}} C {{3}}"}]`)}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.tmpl.Placeholders(); got != tc.want {
				t.Errorf("Placeholders() = %d, want %d", got, tc.want)
			}
		})
	}
}

// HasLanguage matches what OneRoute sends: en when none is given, codes
// compared without case or '-'/'_' differences, a bare language matching
// its regions.
func TestTemplateHasLanguage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		locale, lang string
		want         bool
	}{
		{"en", "", true},
		{"en_GB", "", true},
		{"fr", "", false},
		{"fr", "fr", true},
		{"fr", "FR", true},
		{"en_US", "en-us", true},
		{"en_US", "en_GB", false},
		{"pt_BR", "pt", true},
		{"en", "fr", false},
	} {
		if got := (Template{Locale: tc.locale}).HasLanguage(tc.lang); got != tc.want {
			t.Errorf("locale %q language %q: got %v, want %v", tc.locale, tc.lang, got, tc.want)
		}
	}
}

// ButtonValues counts the values a send must give for the template's
// buttons: copy codes, URL placeholders and quick-reply payloads, not plain
// links.
func TestTemplateButtonValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, comps string
		want        int
	}{
		{"no components", ``, 0},
		{"body only", `[{"type":"BODY","text":"Hi {{1}}"}]`, 0},
		{"copy code", `[{"type":"BODY","text":"{{1}}"},{"type":"BUTTONS","buttons":[{"type":"OTP","otp_type":"COPY_CODE"}]}]`, 1},
		{"links and replies", `[{"type":"BUTTONS","buttons":[{"type":"URL","url":"https://x.co/{{1}}"},{"type":"URL","url":"https://x.co/"},{"type":"QUICK_REPLY","text":"Stop"}]}]`, 2},
	} {
		if got := (Template{Components: json.RawMessage(tc.comps)}).ButtonValues(); got != tc.want {
			t.Errorf("%s: ButtonValues() = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// ButtonKinds names the buttons taking a value in order; HeaderFormat and
// HeaderValue read the HEADER component.
func TestTemplateButtonKindsAndHeader(t *testing.T) {
	t.Parallel()
	tpl := Template{Components: json.RawMessage(`[{"type":"HEADER","format":"IMAGE"},{"type":"BODY","text":"Hi {{1}}"},` +
		`{"type":"BUTTONS","buttons":[{"type":"QUICK_REPLY","text":"Stop"},{"type":"PHONE_NUMBER"},{"type":"URL","url":"https://x.co/{{1}}"}]}]`)}
	if got := strings.Join(tpl.ButtonKinds(), ","); got != "quick_reply,url" {
		t.Errorf("ButtonKinds() = %s", got)
	}
	if tpl.HeaderFormat() != "image" || !tpl.HeaderValue() {
		t.Errorf("HeaderFormat() = %q, HeaderValue() = %v", tpl.HeaderFormat(), tpl.HeaderValue())
	}
	text := Template{Components: json.RawMessage(`[{"type":"HEADER","format":"TEXT","text":"Order"}]`)}
	if text.HeaderFormat() != "text" || text.HeaderValue() {
		t.Errorf("a fixed text header: %q, %v", text.HeaderFormat(), text.HeaderValue())
	}
	if (Template{}).HeaderFormat() != "" {
		t.Error("no components: a header format")
	}
}
