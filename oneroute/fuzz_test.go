package oneroute_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fanoutdev/fanout/oneroute"
)

// addFixtures seeds a fuzz target with every webhook fixture (the committed
// corpus in testdata/fuzz adds mutations of them).
func addFixtures(f *testing.F, add func(b []byte)) {
	files, err := filepath.Glob(filepath.Join("testdata", "webhooks", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// FuzzParseEvent: any input either parses to an event with a type, or
// fails with ErrMalformedEvent; never a panic, never both.
func FuzzParseEvent(f *testing.F) {
	addFixtures(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := oneroute.ParseEvent(data)
		switch {
		case err != nil && ev != nil:
			t.Fatalf("both an event and an error: %v", err)
		case err != nil && !errors.Is(err, oneroute.ErrMalformedEvent):
			t.Fatalf("error without ErrMalformedEvent: %v", err)
		case err == nil && (ev == nil || ev.EventType() == ""):
			t.Fatalf("no error and no typed event: %#v", ev)
		}
	})
}

// FuzzVerifySignature: the signature of a body verifies it, and any change
// to the body (one byte replaced, the body cut short) makes it fail.
func FuzzVerifySignature(f *testing.F) {
	addFixtures(f, func(b []byte) { f.Add(b, uint(len(b)/2), byte('x'), uint(len(b)-1)) })
	f.Fuzz(func(t *testing.T, body []byte, pos uint, b byte, cut uint) {
		const secret = "whsec_fuzz"
		sig := oneroute.WebhookSignature(secret, body)
		if err := oneroute.VerifySignature(secret, body, sig); err != nil {
			t.Fatalf("own signature refused: %v", err)
		}
		if len(body) == 0 {
			return
		}
		changed := bytes.Clone(body)
		changed[pos%uint(len(body))] = b
		if err := oneroute.VerifySignature(secret, changed, sig); (err == nil) != bytes.Equal(changed, body) {
			t.Fatalf("a changed body verified (or the same body did not): err = %v", err)
		}
		if short := body[:cut%uint(len(body))]; oneroute.VerifySignature(secret, short, sig) == nil {
			t.Fatalf("a truncated body (%d of %d bytes) verified", len(short), len(body))
		}
		if oneroute.VerifySignature(secret+"x", body, sig) == nil {
			t.Fatal("another secret verified")
		}
	})
}
