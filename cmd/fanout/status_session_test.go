package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

// fanout status shows a whatsapp_session campaign's routes and saving, in
// text and under their contract names in --json; other channels show no
// route lines.
func TestStatusShowsSessionRoutes(t *testing.T) {
	t.Parallel()
	p := campaigns.Progress{ID: "s", Channel: campaigns.ChannelWhatsAppSession, State: campaigns.StateCompleted,
		Total: 1000, Sent: 1000, SessionSent: 400, TemplateSent: 600, SavedEstimate: 5}
	var w bytes.Buffer
	printProgress(&w, p)
	for _, want := range []string{"session_sent 400\n", "template_sent 600\n", "saved_estimate 5.00"} {
		if !strings.Contains(w.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, w.String())
		}
	}
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"session_sent":400`, `"template_sent":600`, `"saved_estimate":5`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("status --json lacks %s: %s", want, js)
		}
	}
	w.Reset()
	p.Channel = campaigns.ChannelSMS
	printProgress(&w, p)
	if strings.Contains(w.String(), "session_sent") {
		t.Errorf("an SMS campaign's status shows session routes:\n%s", w.String())
	}
}

// The example end to end on the sandbox: two customers fanout believes
// wrote an hour ago (sessions import) are unknown to the sandbox, so their
// session messages are refused and they get the template, once, like the
// three without a window. Status and report say so.
func TestRunSessionExample(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := setup(t)
	b.env["REDIS_URL"] = srv.URL()
	dir := t.TempDir()
	seed := filepath.Join(dir, "windows.csv")
	at := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if err := os.WriteFile(seed, []byte("phone,last_inbound_at\n08031230001,"+at+"\n08031230002,"+at+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := b.run(t, "sessions", "import", "--from", sandbox.WhatsAppNumber, seed); code != 0 {
		t.Fatalf("sessions import: exit %d\n%s", code, b.stderr.String())
	}
	if code := b.run(t, "run", "--sandbox", "--json", "--timeout", "60s", "../../examples/whatsapp-session.yaml"); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, b.stderr.String())
	}
	var got struct {
		campaigns.Progress
		Sandbox struct {
			SendRequests int64 `json:"send_requests"`
			Accepted     int64 `json:"accepted"`
			Duplicates   int64 `json:"duplicates"`
		} `json:"sandbox"`
	}
	if err := json.Unmarshal(b.stdout.Bytes(), &got); err != nil {
		t.Fatalf("decode %q: %v", b.stdout.String(), err)
	}
	if got.Sent != 5 || got.SessionSent != 0 || got.TemplateSent != 5 || got.Sandbox.Accepted != 5 || got.Sandbox.Duplicates != 0 {
		t.Fatalf("sent %d session_sent %d template_sent %d; sandbox accepted %d (%d duplicates); want 5 0 5, 5 (0)",
			got.Sent, got.SessionSent, got.TemplateSent, got.Sandbox.Accepted, got.Sandbox.Duplicates)
	}
	// Three templates in one request; two session messages refused, then
	// two templates one by one.
	if got.Sandbox.SendRequests != 5 {
		t.Errorf("the sandbox got %d send requests, want 5", got.Sandbox.SendRequests)
	}
	if code := b.run(t, "status", got.ID); code != 0 || !strings.Contains(b.stdout.String(), "template_sent 5") {
		t.Fatalf("status: exit %d\n%s%s", code, b.stdout.String(), b.stderr.String())
	}
	if code := b.run(t, "report", got.ID); code != 0 {
		t.Fatalf("report: exit %d\n%s", code, b.stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(b.stdout.String()), "\n")
	if len(lines) != 6 || !strings.HasSuffix(lines[0], ",route") {
		t.Fatalf("report:\n%s", b.stdout.String())
	}
	for _, l := range lines[1:] {
		if !strings.HasSuffix(l, ",template") {
			t.Errorf("report line %q: want route template", l)
		}
	}
}
