package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

// writeSpec writes an SMS spec with the given message and a recipients
// file, and returns the spec's path.
func writeSpec(t *testing.T, message, recipients string) string {
	t.Helper()
	dir := t.TempDir()
	spec := fmt.Sprintf("id: tpl\nchannel: sms\nchannel_id: %s\nrecipients: r.csv\nbatch_size: 2\nmessage: '%s'\n",
		sandbox.SMSChannelID, strings.ReplaceAll(message, "'", "''"))
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "r.csv"), []byte(recipients), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "c.yaml")
}

const threeRecipients = "phone,first_name,discount\n08031234561,Ada,20\n08031234562,Bola,15\n08031234563,Chidi,30\n"

// Each personalisation form reaches the provider with each recipient's own
// text: the forms the old field scan missed sent "Hi , your % discount"
// to everyone.
func TestEveryTemplateFormSendsPersonalText(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sb := sandbox.New(sandbox.Options{DLRDelay: 50 * time.Millisecond})
	hs := httptest.NewServer(sb)
	t.Cleanup(hs.Close)
	t.Cleanup(sb.Close)
	client, err := oneroute.New(oneroute.Options{BaseURL: hs.URL, APIKey: sandbox.KeyPrefix + "tpl"})
	if err != nil {
		t.Fatal(err)
	}
	people := []struct{ phone, name, discount string }{
		{"2348031234561", "Ada", "20"}, {"2348031234562", "Bola", "15"}, {"2348031234563", "Chidi", "30"},
	}
	for i, tc := range []struct {
		name, message string
		want          func(name, discount string) string
	}{
		{"index", `Hi {{index . "first_name"}}, your {{index . "discount"}}% discount is waiting.`,
			func(n, d string) string { return "Hi " + n + ", your " + d + "% discount is waiting." }},
		{"with dot", "Hello {{with .first_name}}{{.}}{{end}}", func(n, d string) string { return "Hello " + n }},
		{"root variable", "Hey {{$.first_name}} ({{$.discount}}%)", func(n, d string) string { return "Hey " + n + " (" + d + "%)" }},
		{"field", "Hi {{.first_name | upper}}", func(n, d string) string { return "Hi " + strings.ToUpper(n) }},
	} {
		b := setup(t)
		b.env["REDIS_URL"] = srv.URL()
		b.env["ONEROUTE_BASE_URL"] = hs.URL
		b.env["ONEROUTE_API_KEY"] = sandbox.KeyPrefix + "tpl"
		b.env["FANOUT_DLR_INTERVAL"] = "100ms"
		path := writeSpec(t, tc.message, threeRecipients)
		spec, _ := os.ReadFile(path)
		if err := os.WriteFile(path, bytes.Replace(spec, []byte("id: tpl"), fmt.Appendf(nil, "id: tpl-%d", i), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		if code := b.run(t, "run", "--json", "--dlr-max-age", "1s", "--timeout", "60s", path); code != 0 {
			t.Fatalf("%s: exit %d\n%s", tc.name, code, b.stderr.String())
		}
		for _, p := range people {
			msgs, _, err := client.FetchSMSMessagesTo(context.Background(), sandbox.SMSChannelID, p.phone, oneroute.Page{})
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want(p.name, p.discount)
			found := false
			for _, m := range msgs {
				found = found || m.Message == want
			}
			if !found {
				var got []string
				for _, m := range msgs {
					got = append(got, m.Message)
				}
				t.Errorf("%s: %s got %q, want one %q", tc.name, p.phone, got, want)
			}
		}
	}
}

// A template that fails for every one of the first recipients stops the
// dispatch with exit 2, the spec's line and the reason, whether the file
// can be read ahead or comes on standard input; nothing is enqueued.
func TestTemplateFailingForAllStopsTheDispatch(t *testing.T) {
	t.Parallel()
	path := writeSpec(t, "{{if .vip}}{{lt .first_name 3}}{{end}}{{.first_name}}", strings.ReplaceAll(threeRecipients, "phone,first_name,discount", "phone,first_name,vip"))
	code, _, errOut := runDispatch(t, map[string]string{}, "", "dispatch", "--dry-run", "--offline", path)
	if code != exitBadInput || !strings.Contains(errOut, "c.yaml:6") || !strings.Contains(errOut, "the template fails for each of the first 3 recipients") ||
		!strings.Contains(errOut, "incompatible types for comparison") {
		t.Errorf("file: exit %d\n%s", code, errOut)
	}
	code, _, errOut = runDispatch(t, map[string]string{}, strings.ReplaceAll(threeRecipients, "phone,first_name,discount", "phone,first_name,vip"),
		"dispatch", "--dry-run", "--offline", "--recipients", "-", path)
	if code != exitBadInput || !strings.Contains(errOut, "c.yaml:6") || !strings.Contains(errOut, "the template fails for all 3 recipients read") {
		t.Errorf("stdin: exit %d\n%s", code, errOut)
	}
	// One failing row among good ones is that row's refusal, not the spec's.
	path = writeSpec(t, "{{if .vip}}{{lt .first_name 3}}{{end}}{{.first_name}}", "phone,first_name,vip\n08031234561,Ada,\n08031234562,Bola,yes\n")
	code, out, errOut := runDispatch(t, map[string]string{}, "", "dispatch", "--dry-run", "--offline", "--json", path)
	if code != 0 || !strings.Contains(out, `"valid":1,`) || !strings.Contains(out, `"invalid":1,`) {
		t.Errorf("one bad row: exit %d\n%s\n%s", code, out, errOut)
	}
}

// Hostile templates are refused by `dispatch --dry-run` with exit 2 and the
// spec's line, within 1 s and 50 MB, measured on the real process.
func TestHostileTemplatesDryRun(t *testing.T) {
	t.Parallel()
	bin := fanoutBinary(t)
	for _, tc := range []struct{ name, message, want string }{
		{"range", "{{range 1000000000000}}x{{end}}{{.first_name}}", "{{range}} is not allowed"},
		{"empty range", "{{range 1000000000000}}{{end}}{{.first_name}}", "{{range}} is not allowed"},
		{"recursion", `{{define "g"}}{{template "g" .}}{{end}}{{template "g" .}}`, "not allowed"},
		{"call", "{{call .first_name}}", "function call is not allowed"},
		{"printf", `{{printf "%0999999999d" 1}}`, "printf width"},
		{"too big", strings.Repeat("{{.first_name}}", 20000), "over the"},
		{"too many actions", strings.Repeat("{{.first_name}}", 2001), "over the cap of 2000"},
	} {
		path := writeSpec(t, tc.message, threeRecipients)
		// /usr/bin/time reports the child's own peak RSS; the rusage Go
		// gets from wait4 would include this test process's, which the
		// child inherits at exec.
		rssFile := filepath.Join(t.TempDir(), "rss")
		cmd := exec.Command("/usr/bin/time", "-f", "%M", "-o", rssFile, bin, "dispatch", "--dry-run", "--offline", path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitBadInput {
			t.Errorf("%s: %v, want exit 2 (needs /usr/bin/time, Debian package time)\n%s", tc.name, err, stderr.String())
			continue
		}
		rss, err := os.ReadFile(rssFile)
		if err != nil {
			t.Fatal(err)
		}
		var kib int
		lines := strings.Fields(string(rss)) // after "Command exited with ..."
		if _, err := fmt.Sscan(lines[len(lines)-1], &kib); err != nil || kib <= 0 || kib > 50<<10 {
			t.Errorf("%s: peak RSS %q KiB, want under 50 MB", tc.name, rss)
		}
		t.Logf("%s: refused in %s, peak RSS %d KiB", tc.name, took.Round(time.Millisecond), kib)
		if !strings.Contains(stderr.String(), "c.yaml:6") || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: stderr %q lacks the line or %q", tc.name, stderr.String(), tc.want)
		}
		if took > 5*time.Second { // 1 s on a quiet machine; room for a loaded one
			t.Errorf("%s: took %s", tc.name, took)
		}
	}
}

// An HTML email reaches OneRoute with each recipient's fields escaped: a
// recipient named <a href=x>y</a> gets its name as text, not a link.
func TestHTMLEmailArrivesEscaped(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	sb := sandbox.New(sandbox.Options{})
	t.Cleanup(sb.Close)
	var mu sync.Mutex
	var bodies []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/email") { // not the preflight's GET /channels/email
			body, _ := io.ReadAll(r.Body)
			var q struct {
				Message string `json:"message"`
			}
			if err := json.Unmarshal(body, &q); err != nil {
				t.Error(err)
			}
			mu.Lock()
			bodies = append(bodies, q.Message)
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	dir := t.TempDir()
	spec := fmt.Sprintf("id: html-email\nchannel: email\nchannel_id: %s\nrecipients: r.csv\nsubject: 'Hello {{.name}}'\nmessage: '<p>Hello {{.name}}</p>'\n", sandbox.EmailChannelID)
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "r.csv"), []byte("email,name\nada@example.com,<a href=x>y</a>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := setup(t)
	b.env["REDIS_URL"] = srv.URL()
	b.env["ONEROUTE_BASE_URL"] = hs.URL
	b.env["ONEROUTE_API_KEY"] = sandbox.KeyPrefix + "html"
	// The email's status: from the Logs API soon, no webhook being set.
	b.env["FANOUT_STATUS_FALLBACK_AFTER"] = "100ms"
	b.env["FANOUT_DLR_INTERVAL"] = "100ms"
	if code := b.run(t, "run", "--json", "--timeout", "60s", filepath.Join(dir, "c.yaml")); code != 0 {
		t.Fatalf("exit %d\n%s", code, b.stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "<p>Hello &lt;a href=x&gt;y&lt;/a&gt;</p>"; len(bodies) != 1 || bodies[0] != want {
		t.Fatalf("the sandbox received %q, want [%q]", bodies, want)
	}
}
