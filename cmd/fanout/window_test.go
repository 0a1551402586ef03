package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/dispatcher"
)

// A campaign waiting for its send window says until when, in status (text
// and JSON), in watch's lines and in dispatch's summary; one that is not
// waiting says nothing of it.
func TestNextOpeningShown(t *testing.T) {
	t.Parallel()
	at := time.Now().Add(3 * time.Hour).Truncate(time.Second).UTC()
	stamp := at.Format(time.RFC3339)
	p := campaigns.Progress{ID: "c1", Channel: campaigns.ChannelSMS, State: campaigns.StateRunning, NextOpening: &at}

	var w bytes.Buffer
	printProgress(&w, p)
	if want := "next open  " + stamp + " (in 3h0m0s)"; !strings.Contains(w.String(), want) {
		t.Errorf("status: no %q in:\n%s", want, w.String())
	}
	js, _ := json.Marshal(p)
	if want := `"next_opening":"` + stamp + `"`; !strings.Contains(string(js), want) {
		t.Errorf("status --json: no %s in %s", want, js)
	}
	if got := frameLine(frame{p: p}); !strings.Contains(got, "waiting until "+stamp) {
		t.Errorf("watch line %q names no opening", got)
	}
	if got := headText(frame{p: p}); !strings.Contains(got, "waiting until "+stamp) {
		t.Errorf("watch head %q names no opening", got)
	}
	w.Reset()
	printStart(&w, dispatcher.Result{StartsAt: &at, TimezoneDefaulted: 2})
	for _, want := range []string{"sending starts " + stamp, "2 recipients have no usable time zone"} {
		if !strings.Contains(w.String(), want) {
			t.Errorf("dispatch: no %q in %q", want, w.String())
		}
	}

	p.NextOpening = nil
	w.Reset()
	printProgress(&w, p)
	js, _ = json.Marshal(p)
	if strings.Contains(w.String(), "next open") || strings.Contains(string(js), "next_opening") || strings.Contains(frameLine(frame{p: p}), "waiting until") {
		t.Errorf("a campaign not waiting shows an opening:\n%s\n%s", w.String(), js)
	}
	w.Reset()
	printStart(&w, dispatcher.Result{})
	if w.Len() != 0 {
		t.Errorf("dispatch without a schedule printed %q", w.String())
	}
}
