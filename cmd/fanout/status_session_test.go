package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
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
