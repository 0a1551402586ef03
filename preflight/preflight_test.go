package preflight_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/preflight"
)

type testBundle struct {
	client *oneroute.Client
	dir    string
}

// setup serves a sandbox (its seeded channels and templates are the
// account) and returns a client of it.
func setup(t *testing.T) *testBundle {
	t.Helper()
	sb := sandbox.New(sandbox.Options{})
	srv := httptest.NewServer(sb)
	t.Cleanup(func() { srv.Close(); sb.Close() })
	c, err := oneroute.New(oneroute.Options{BaseURL: srv.URL, APIKey: "test_preflight"})
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{client: c, dir: t.TempDir()}
}

// spec writes a spec file and loads it, so findings have lines.
func (b *testBundle) spec(t *testing.T, body string) campaigns.Spec {
	t.Helper()
	path := filepath.Join(b.dir, "campaign.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := campaigns.LoadSpec(path)
	if err != nil {
		t.Fatalf("load spec: %v", err)
	}
	return s
}

func whatsApp(from, template string) string {
	return fmt.Sprintf("channel: whatsapp_template\nrecipients: r.csv\nfrom: %q\ntemplate:\n%s", from, template)
}

// Each mistake the sandbox would refuse at the first send is found first,
// on the line that holds it, with the fix and the choices.
func TestCheckRefuses(t *testing.T) {
	t.Parallel()
	num := sandbox.WhatsAppNumber
	for _, tc := range []struct {
		name string
		spec string
		want []string // in the one finding's text
	}{
		{"unknown channel id", "channel: sms\nrecipients: r.csv\nchannel_id: nope\nmessage: hi\n",
			[]string{"campaign.yaml:3:", "channel_id nope is not a channel", "sms channels: " + sandbox.SMSChannelID + " (" + sandbox.SMSSenderID + ")"}},
		{"channel of another medium", "channel: sms\nrecipients: r.csv\nmessage: hi\nchannel_id: " + sandbox.EmailChannelID + "\n",
			[]string{"campaign.yaml:4:", "is an email channel, not an sms one", "sms channels: " + sandbox.SMSChannelID}},
		{"email channel that is sms", "channel: email\nrecipients: r.csv\nsubject: s\nmessage: hi\nchannel_id: " + sandbox.SMSChannelID + "\n",
			[]string{"campaign.yaml:5:", "is an sms channel, not an email one", "email channels: " + sandbox.EmailChannelID + " (" + sandbox.EmailAddress + ")"}},
		{"from is not a whatsapp number", whatsApp("+2348099999999", "  name: first_welcome_messsage\n  parameters: [\"{{.name}}\"]\n"),
			[]string{"campaign.yaml:3:", "from +2348099999999 is not the number of a WhatsApp channel", "whatsapp numbers: " + num}},
		{"unknown template", whatsApp(num, "  name: no_such_template\n  parameters: [\"{{.name}}\"]\n"),
			[]string{"campaign.yaml:5:", "template no_such_template is not a template", "order_shipped (en, 2 parameters)"}},
		{"pending template", whatsApp(num, "  parameters: [\"{{.name}}\"]\n  name: summer_promo\n"),
			[]string{"campaign.yaml:6:", "summer_promo is pending, not approved", "first_welcome_messsage (en, 1 parameter)"}},
		{"wrong language", whatsApp(num, "  name: first_welcome_messsage\n  language: fr\n  parameters: [\"{{.name}}\"]\n"),
			[]string{"campaign.yaml:6:", "has no fr version (it is in en)", "set template.language to en"}},
		{"language missing for a french template", whatsApp(num, "  name: bienvenue\n  parameters: [\"{{.name}}\"]\n"),
			[]string{"campaign.yaml:5:", "bienvenue has no en version (it is in fr)", "add language: fr"}},
		{"template with a copy-code button", whatsApp(num, "  name: otp_auth\n  parameters: [\"{{.code}}\"]\n"),
			[]string{"campaign.yaml:5:", "otp_auth has 1 button taking a value (copy_code), the spec gives 0", "make template.buttons a list of 1"}},
		{"missing image header", whatsApp(num, "  name: new_collection\n  parameters: [\"{{.name}}\"]\n"),
			[]string{"campaign.yaml:5:", "new_collection has an image header", "add header: {type: image, url: https://...} under template"}},
		{"wrong header type", whatsApp(num, "  name: new_collection\n  parameters: [\"{{.name}}\"]\n  header: {type: video, url: \"https://cdn.example.com/a.mp4\"}\n"),
			[]string{"campaign.yaml:7:", "template.header.type is video but template new_collection has an image header", "set type: image"}},
		{"header on a template without one", whatsApp(num, "  name: order_shipped\n  parameters: [\"{{.name}}\", \"x\"]\n  header: {type: image, url: \"https://cdn.example.com/a.jpg\"}\n"),
			[]string{"campaign.yaml:7:", "order_shipped has no header: remove template.header"}},
		{"too few buttons", whatsApp(num, "  name: track_order\n  parameters: [\"{{.name}}\"]\n  buttons: [{type: url, parameter: \"{{.code}}\"}]\n"),
			[]string{"campaign.yaml:7:", "track_order has 2 buttons taking a value (url, quick_reply), the spec gives 1", "a list of 2 in that order"}},
		{"buttons in the wrong order", whatsApp(num, "  name: track_order\n  parameters: [\"{{.name}}\"]\n  buttons:\n    - {type: quick_reply, payload: stop}\n    - {type: url, parameter: \"{{.code}}\"}\n"),
			[]string{"campaign.yaml:7:", "template.buttons[0] is quick_reply but button 1 of template track_order is a url with a {{1}} suffix (parameter)", "order is url, quick_reply"}},
		{"wrong parameter count", whatsApp(num, "  name: order_shipped\n  parameters:\n    - \"{{.name}}\"\n"),
			[]string{"campaign.yaml:6:", "order_shipped takes 2 parameters", "the spec gives 1", "a list of 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			err := preflight.Check(context.Background(), b.spec(t, tc.spec), b.client)
			var findings campaigns.SpecErrors
			if !errors.As(err, &findings) || len(findings) != 1 {
				t.Fatalf("got %v, want one finding", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("finding lacks %q:\n%s", w, err)
				}
			}
		})
	}
}

// What the account has passes, in every medium and language.
func TestCheckPasses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, spec := range []string{
		"channel: sms\nrecipients: r.csv\nchannel_id: " + sandbox.SMSChannelID + "\nmessage: hi\n",
		"channel: email\nrecipients: r.csv\nsubject: s\nmessage: hi\nchannel_id: " + sandbox.EmailChannelID + "\n",
		whatsApp("+"+sandbox.WhatsAppNumber, "  name: first_welcome_messsage\n  parameters: [\"{{.name}}\"]\n"),
		whatsApp(sandbox.WhatsAppNumber, "  name: order_shipped\n  language: en_US\n  parameters: [\"{{.name}}\", \"{{.order}}\"]\n"),
		whatsApp(sandbox.WhatsAppNumber, "  name: bienvenue\n  language: fr\n  parameters: [\"{{.name}}\"]\n"),
		whatsApp(sandbox.WhatsAppNumber, "  name: new_collection\n  parameters: [\"{{.name}}\"]\n  header: {type: image, url: \"https://cdn.example.com/{{.sku}}.jpg\"}\n"),
		whatsApp(sandbox.WhatsAppNumber, "  name: track_order\n  parameters: [\"{{.name}}\"]\n  buttons:\n    - {type: url, parameter: \"{{.code}}\"}\n    - {type: quick_reply, payload: stop}\n"),
		whatsApp(sandbox.WhatsAppNumber, "  name: otp_auth\n  parameters: [\"{{.code}}\"]\n  buttons: [{type: copy_code, parameter: \"{{.code}}\"}]\n"),
	} {
		if err := preflight.Check(context.Background(), b.spec(t, spec), b.client); err != nil {
			t.Errorf("spec:\n%s\nrefused: %v", spec, err)
		}
	}
}

// A OneRoute that cannot be asked is a failure to check, not a finding.
func TestCheckOneRouteDown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	down := downCatalog{err: errors.New("connection refused")}
	err := preflight.Check(context.Background(), b.spec(t, "channel: sms\nrecipients: r.csv\nchannel_id: x\nmessage: hi\n"), down)
	if err == nil || preflight.IsFinding(err) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("got %v, want the catalog's error, not a finding", err)
	}
}

type downCatalog struct{ err error }

func (d downCatalog) FetchChannels(context.Context, string) ([]oneroute.Channel, error) {
	return nil, d.err
}

func (d downCatalog) FetchTemplates(context.Context, string) ([]oneroute.Template, error) {
	return nil, d.err
}

// flaky answers the first fails reads of each kind with err, then asks the
// real catalog; it counts the reads.
type flaky struct {
	preflight.Catalog
	fails, reads int
	err          error
}

func (f *flaky) FetchChannels(ctx context.Context, medium string) ([]oneroute.Channel, error) {
	if f.reads++; f.reads <= f.fails {
		return nil, f.err
	}
	return f.Catalog.FetchChannels(ctx, medium)
}

// A read that may work again (5xx, 429) is tried again, up to four times:
// one passing fault does not refuse a dispatch; a refusal (401) is not
// tried again, and a fault that lasts is reported after the fourth try.
func TestCheckRetriesPassingFaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.spec(t, "channel: sms\nrecipients: r.csv\nchannel_id: "+sandbox.SMSChannelID+"\nmessage: hi\n")
	for _, c := range []struct {
		name      string
		fails     int
		err       error
		ok        bool
		wantReads int
	}{
		{"two 500s", 2, &oneroute.APIError{Op: "fetch channels", Status: 500, Message: "Internal server error"}, true, 3},
		{"a 429", 1, &oneroute.APIError{Op: "fetch channels", Status: 429, Message: "slow down"}, true, 2},
		{"a lasting 503", 10, &oneroute.APIError{Op: "fetch channels", Status: 503, Message: "unavailable"}, false, 4},
		{"a 401", 10, &oneroute.APIError{Op: "fetch channels", Status: 401, Message: "bad key"}, false, 1},
	} {
		f := &flaky{Catalog: b.client, fails: c.fails, err: c.err}
		err := preflight.Check(context.Background(), spec, f)
		if (err == nil) != c.ok || f.reads != c.wantReads {
			t.Errorf("%s: %v after %d reads; want ok=%v after %d", c.name, err, f.reads, c.ok, c.wantReads)
		}
	}
}
