package sandbox_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

// A template message's header and buttons are checked against the seeded
// template: new_collection needs an https image header, track_order two
// button values, and a template without a header refuses one.
func TestTemplateHeaderAndButtons(t *testing.T) {
	t.Parallel()
	b := setup(t, sandbox.Options{})
	msg := func(to, name, extra string) string {
		return `{"to":"` + to + `","template":{"name":"` + name + `","parameters":[{"type":"text","text":"Ada"}]` + extra + `}}`
	}
	btn := func(vals ...string) string {
		ps := make([]string, len(vals))
		for i, v := range vals {
			ps[i] = `{"type":"text","text":"` + v + `"}`
		}
		return `,"buttons":[` + strings.Join(ps, ",") + `]`
	}
	body := `{"from":"` + sandbox.WhatsAppNumber + `","messages":[` + strings.Join([]string{
		msg("2348031234561", "new_collection", `,"header":{"type":"image","link":"https://cdn.example.com/a.jpg"}`),
		msg("2348031234562", "new_collection", ""),
		msg("2348031234563", "new_collection", `,"header":{"type":"video","link":"https://cdn.example.com/a.mp4"}`),
		msg("2348031234564", "new_collection", `,"header":{"type":"image","link":"http://cdn.example.com/a.jpg"}`),
		msg("2348031234565", "first_welcome_messsage", `,"header":{"type":"image","link":"https://cdn.example.com/a.jpg"}`),
		msg("2348031234566", "track_order", btn("A1B2", "stop")),
		msg("2348031234567", "track_order", btn("A1B2")),
	}, ",") + `]}`
	a := b.call(t, "POST", "/api/public/conversation/template", "test_parts", body)
	if a.Status != 200 {
		t.Fatalf("HTTP %d %s", a.Status, a.Raw)
	}
	var got []string
	for _, r := range a.Body["data"].([]any) {
		res := r.(map[string]any)
		if res["status"] == "success" {
			got = append(got, "success")
		} else {
			got = append(got, fmt.Sprint(res["response"]))
		}
	}
	want := []string{"success", "Template new_collection needs a header of type image", "Template new_collection has a header of type image, got video",
		"Template new_collection header link must be an https URL", "Template first_welcome_messsage has no header", "success",
		"Template track_order takes 2 buttons, got 1"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("results (-want +got):\n%s", d)
	}
}
