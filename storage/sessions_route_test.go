package storage_test

import (
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

// A row's route goes from session to template once and never back, and an
// accepted row is counted once in session_sent or template_sent however
// often it is reported.
func TestRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := campaigns.Spec{ID: "routes", Channel: campaigns.ChannelWhatsAppSession, From: "2348000000001", Message: "hi",
		FallbackTemplate: &campaigns.Template{Name: "x"}, TemplatePrice: 0.5, Recipients: "r.csv"}
	if _, err := b.store.Create(b.ctx, spec); err != nil {
		t.Fatal(err)
	}
	set := func(row int, route, want string) {
		t.Helper()
		got, err := b.store.SetRoute(b.ctx, "routes", row, route)
		if err != nil || got != want {
			t.Fatalf("SetRoute(%d, %s) = %q, %v; want %q", row, route, got, err, want)
		}
	}
	set(1, campaigns.RouteSession, campaigns.RouteSession)
	set(1, campaigns.RouteTemplate, campaigns.RouteTemplate) // the window closed after all
	set(1, campaigns.RouteSession, campaigns.RouteTemplate)  // never back
	set(2, campaigns.RouteSession, campaigns.RouteSession)
	if err := b.store.SetRoutes(b.ctx, "routes", []int{3, 4}, campaigns.RouteTemplate); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{3, 0} {
		n, err := b.store.CountRoutes(b.ctx, "routes", []storage.RouteCount{{Row: 1, Route: "t"}, {Row: 2, Route: "s"}, {Row: 3, Route: "t"}})
		if err != nil || n != want {
			t.Fatalf("CountRoutes call %d counted %d, %v; want %d", i+1, n, err, want)
		}
	}
	set(2, campaigns.RouteTemplate, campaigns.RouteSession) // accepted: its route stands
	got, err := b.store.Routes(b.ctx, "routes", []int{1, 2, 3, 4, 5})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"t", "s", "t", "t", ""}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d route %q, want %q", i+1, got[i], want[i])
		}
	}
	p, err := b.store.Progress(b.ctx, "routes")
	if err != nil {
		t.Fatal(err)
	}
	if p.SessionSent != 1 || p.TemplateSent != 2 || p.SavedEstimate != 0.5 {
		t.Fatalf("session_sent %d template_sent %d saved_estimate %v; want 1 2 0.5", p.SessionSent, p.TemplateSent, p.SavedEstimate)
	}
	if n, err := b.store.CountRoutes(b.ctx, "gone", []storage.RouteCount{{Row: 1, Route: "s"}}); err != nil || n != 0 {
		t.Fatalf("CountRoutes of a missing campaign = %d, %v; want 0", n, err)
	}
}
