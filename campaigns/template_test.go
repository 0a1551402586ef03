package campaigns_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/campaigns"
)

func smsYAML(message string) string {
	return "channel: sms\nchannel_id: x\nrecipients: r.csv\nmessage: '" + strings.ReplaceAll(message, "'", "''") + "'\n"
}

// Every template form that reads a field renders per recipient: a form the
// old field scan missed ({{index . "x"}}, {{$.x}}, {{with}}{{.}}) made the
// campaign one shared text with the fields empty for everyone.
func TestEveryFieldFormPersonalises(t *testing.T) {
	t.Parallel()
	ada := map[string]string{"first_name": "Ada", "discount": "20", "tier": "gold", "code": "42"}
	for _, tc := range []struct {
		name, message string
		fields        []string
		want          string
	}{
		{"field", "Hi {{.first_name}}", []string{"first_name"}, "Hi Ada"},
		{"index", `Hi {{index . "first_name"}}, your {{index . "discount"}}% discount is waiting.`, []string{"discount", "first_name"}, "Hi Ada, your 20% discount is waiting."},
		{"root variable", "Hi {{$.first_name}}", []string{"first_name"}, "Hi Ada"},
		{"with dot", "Hi {{with .first_name}}{{.}}{{end}}", []string{"first_name"}, "Hi Ada"},
		{"with else", "Hi {{with .nick}}{{.}}{{else}}{{$.first_name}}{{end}}", []string{"first_name", "nick"}, "Hi Ada"},
		{"if eq", `{{if eq .tier "gold"}}Gold{{else}}Hello{{end}} {{.first_name}}`, []string{"first_name", "tier"}, "Gold Ada"},
		{"pipeline", "Hi {{.first_name | upper}} {{lower .tier}} {{title \"ada lovelace\"}}", []string{"first_name", "tier"}, "Hi ADA gold Ada Lovelace"},
		{"default", `Hi {{default "there" .nick}}`, []string{"nick"}, "Hi there"},
		{"printf", `Code {{printf "%05s" .code}}`, []string{"code"}, "Code 00042"},
		{"variable", "{{$n := .first_name}}Hi {{$n}}", []string{"first_name"}, "Hi Ada"},
		{"index in with", `{{with .tier}}{{index $ "first_name"}} is {{.}}{{end}}`, []string{"first_name", "tier"}, "Ada is gold"},
		{"trim", "Hi {{trim .pad}}!", []string{"pad"}, "Hi Ada!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := campaigns.ParseSpec("c.yaml", []byte(smsYAML(tc.message)))
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.Compile()
			if err != nil {
				t.Fatal(err)
			}
			if !r.Personalised() {
				t.Fatal("not personalised")
			}
			if diff := cmp.Diff(tc.fields, r.Fields()); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			fields := map[string]string{"nick": "", "pad": "  Ada "}
			for k, v := range ada {
				fields[k] = v
			}
			c, err := r.Render(fields)
			if err != nil {
				t.Fatal(err)
			}
			if c.Text != tc.want {
				t.Errorf("rendered %q, want %q", c.Text, tc.want)
			}
		})
	}
}

// Text without any action is one shared text, rendered once.
func TestPlainTextIsShared(t *testing.T) {
	t.Parallel()
	s, err := campaigns.ParseSpec("c.yaml", []byte(smsYAML("Sale ends Sunday")))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := s.Compile()
	if r.Personalised() || r.Shared().Text != "Sale ends Sunday" {
		t.Fatalf("personalised %v, shared %q", r.Personalised(), r.Shared().Text)
	}
}

// A render error is never an empty or partial send: a missing field (by
// any form), an empty result or an SMS over the segment cap refuses the row.
func TestRenderRefusesTheRow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, message string
		fields        map[string]string
		want          string
	}{
		{"missing field", "Hi {{.first_name}}", map[string]string{}, `missing field "first_name"`},
		{"missing by index", `Hi {{index . "first_name"}}`, map[string]string{}, `missing field "first_name"`},
		{"empty", "{{.first_name}}", map[string]string{"first_name": " "}, "renders empty"},
		{"too many segments", "{{.long}}", map[string]string{"long": strings.Repeat("a", 1600)}, "11 GSM-7 SMS segments, over the cap of 10"},
		{"too many ucs2 segments", "{{.long}}", map[string]string{"long": strings.Repeat("é€ж", 250)}, "12 UCS-2 SMS segments"},
		{"over bytes", "{{.long}}{{.long}}", map[string]string{"long": strings.Repeat("ж", 4000)}, "renders over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := campaigns.ParseSpec("c.yaml", []byte(smsYAML(tc.message)))
			if err != nil {
				t.Fatal(err)
			}
			r, _ := s.Compile()
			_, err = r.Render(tc.fields)
			var re *campaigns.RenderError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a RenderError with %q", err, tc.want)
			}
		})
	}
}

// Hostile specs are refused at load, fast and in bounded memory: no loop,
// recursion, escape function, unbounded printf, leak of the whole record,
// invisible character or oversized input gets through.
func TestHostileSpecsAreRefusedAtLoad(t *testing.T) {
	// Not parallel: it measures the process's allocations.
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"range over a number", smsYAML("{{range 1000000000000}}x{{end}}{{.name}}"), "{{range}} is not allowed"},
		{"empty range", smsYAML("{{range 1000000000000}}{{end}}{{.name}}"), "{{range}} is not allowed"},
		{"range dollar", smsYAML("{{range .items}}{{$.name}}{{end}}"), "{{range}} is not allowed"},
		{"template call", smsYAML(`{{define "g"}}{{template "g" .}}{{end}}{{template "g" .}}`), "not allowed"},
		{"template recursion", smsYAML(`{{template "message" .}}`), "{{template}} is not allowed"},
		{"block", smsYAML(`{{block "b" .}}{{.name}}{{end}}`), "not allowed"},
		{"call", smsYAML("{{call .name}}"), "function call is not allowed"},
		{"html", smsYAML("{{html .name}}"), "function html is not allowed"},
		{"js", smsYAML("{{js .name}}"), "function js is not allowed"},
		{"urlquery", smsYAML("{{urlquery .name}}"), "function urlquery is not allowed"},
		{"print", smsYAML("{{print .name}}"), "function print is not allowed"},
		{"slice", smsYAML("{{slice .name 1}}"), "function slice is not allowed"},
		{"huge printf width", smsYAML(`{{printf "%0999999999d" 1}}{{.name}}`), "printf width 999999999 is over 1000"},
		{"huge printf precision", smsYAML(`{{printf "%.5000s" .name}}`), "printf width 5000 is over 1000"},
		{"printf star", smsYAML(`{{printf "%*d" 999999 1}}{{.name}}`), "not taken from a value"},
		{"printf format from a field", smsYAML(`{{printf .fmt .name}}`), "format must be a literal"},
		{"whole record", smsYAML("Hi {{.}}"), "whole record"},
		{"whole record by dollar", smsYAML("Hi {{$}}"), "whole record"},
		{"field of a field", smsYAML("Hi {{.name.first}}"), "has no field first"},
		{"field inside with", smsYAML("{{with .name}}{{.first}}{{end}}"), "write {{$.first}}"},
		{"index with a computed key", smsYAML("{{index . .key}}"), "literal string"},
		{"rtl override", smsYAML("Pay \u202eyad 03 ni{{.name}}"), "direction control U+202E"},
		{"zero-width in a field name", smsYAML("Hi {{index . \"first\u200bname\"}}"), "invisible character"},
		{"fails for every recipient", smsYAML(`{{if lt .age 30}}young{{end}}{{.name}}`), "fails for every recipient"},
		{"wrong arity", smsYAML(`{{upper .a .b}}`), "fails for every recipient"},
		{"template too big", smsYAML(strings.Repeat("x", 300<<10)), "over the"},
		{"too many actions", smsYAML(strings.Repeat("{{.a}}", 2001)), "2001 actions, over the cap of 2000"},
		{"empty whatsapp parameter", "channel: whatsapp_template\nfrom: x\nrecipients: r.csv\ntemplate: {name: t, parameters: ['']}\n", "is empty"},
		{"bidi in a parameter", "channel: whatsapp_template\nfrom: x\nrecipients: r.csv\ntemplate: {name: t, parameters: [\"\u2066{{.a}}\"]}\n", "direction control"},
		{"alias bomb", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n" + smsYAML("hi"), "c.yaml"},
		{"spec over the cap", smsYAML("hi") + "#" + strings.Repeat("x", 1<<20) + "\n", "the cap for a campaign spec"},
		{"not text", "\x00\xff\xfe", "not UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := campaigns.ParseSpec("c.yaml", []byte(tc.spec))
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "c.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
			// The promise is 1 s, measured on the real binary by
			// cmd/fanout's TestHostileTemplatesDryRun; under -race on a
			// loaded 2-core machine parsing is several times slower.
			if took > 5*time.Second {
				t.Errorf("took %s to refuse, want well under 5s", took)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 50<<20 {
				t.Errorf("allocated %d MiB to refuse, want under 50", alloc>>20)
			}
		})
	}
}

// A BOM-prefixed spec (Windows editors write one) loads like any other.
func TestBOMPrefixedSpecLoads(t *testing.T) {
	t.Parallel()
	if _, err := campaigns.ParseSpec("c.yaml", []byte("\xEF\xBB\xBF"+smsYAML("Hi {{.name}}"))); err != nil {
		t.Fatal(err)
	}
}

// A YAML mistake never repeats the file's content: the file may not be a
// spec at all (fanout dispatch /etc/shadow).
func TestSpecErrorsDoNotEchoContent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, data, secret string }{
		{"shadow", "root:$6$saltsalt$c2VjcmV0aGFzaA:19000:0:99999:7:::\n", "saltsalt"},
		{"wrong type", "channel: sms\nbatch_size: hunter2secret\n", "hunter2secret"},
		{"odd key", "channel: sms\n\"p@ss=hunter2secret\": 1\n", "hunter2secret"},
		{"list", "- hunter2secret\n", "hunter2secret"},
		{"refused template", smsYAML("hunter2secret {{range .hunter2secret}}hunter2secret{{end}}"), "hunter2secret"},
		{"failing template", smsYAML(`{{if lt "hunter2secret" 3}}x{{end}}`), "hunter2secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.ParseSpec("c.yaml", []byte(tc.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("error repeats the file: %v", err)
			}
		})
	}
}

// SMS segments follow GSM 03.38 and UCS-2 rules.
func TestSMSSegments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text string
		n    int
		enc  string
	}{
		{strings.Repeat("a", 160), 1, "GSM-7"},
		{strings.Repeat("a", 161), 2, "GSM-7"},
		{strings.Repeat("€", 80), 1, "GSM-7"},
		{strings.Repeat("€", 81), 2, "GSM-7"},
		{strings.Repeat("ж", 70), 1, "UCS-2"},
		{strings.Repeat("ж", 71), 2, "UCS-2"},
		{strings.Repeat("😀", 35), 1, "UCS-2"},
		{strings.Repeat("😀", 36), 2, "UCS-2"},
	} {
		n, enc := campaigns.SMSSegments(tc.text)
		if n != tc.n || enc != tc.enc {
			t.Errorf("%.10q…: %d %s, want %d %s", tc.text, n, enc, tc.n, tc.enc)
		}
	}
}
