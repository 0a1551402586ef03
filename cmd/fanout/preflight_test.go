package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

// preflightBundle is a sandbox standing in for the OneRoute account, a
// private Redis, and a folder for specs.
type preflightBundle struct {
	*testBundle
	redis *redistest.Server
	dir   string
}

func setupPreflight(t *testing.T) *preflightBundle {
	t.Helper()
	sb := sandbox.New(sandbox.Options{})
	api := httptest.NewServer(sb)
	t.Cleanup(func() { api.Close(); sb.Close() })
	b := &preflightBundle{testBundle: setup(t), redis: redistest.Start(t), dir: t.TempDir()}
	b.env["REDIS_URL"] = b.redis.URL()
	b.env["ONEROUTE_BASE_URL"] = api.URL
	b.env["ONEROUTE_API_KEY"] = sandbox.KeyPrefix + "preflight"
	if err := os.WriteFile(filepath.Join(b.dir, "r.csv"), []byte("phone,name\n08031234561,Ada\n08031234562,Bola\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// spec writes a campaign spec and returns its path.
func (b *preflightBundle) spec(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(b.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// keys is how many keys the private Redis holds.
func (b *preflightBundle) keys(t *testing.T) int64 {
	t.Helper()
	n, err := b.redis.Client(t).DBSize(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Issue 10, item 7: a spec that names what the OneRoute account does not
// have (a channel, a medium, a template, its approval, its language, its
// parameter count, a WhatsApp number) is refused by dispatch, with and
// without --dry-run and with --detach, with exit 2, the spec's line and
// the fix; nothing reaches Redis.
func TestPreflightRefusesDispatch(t *testing.T) {
	t.Parallel()
	b := setupPreflight(t)
	sms := func(channelID string) string {
		return fmt.Sprintf("id: pf\nchannel: sms\nmessage: \"Hi {{.name}}\"\nrecipients: r.csv\nchannel_id: %s\n", channelID)
	}
	wa := func(from, template string) string {
		return fmt.Sprintf("id: pf\nchannel: whatsapp_template\nrecipients: r.csv\nfrom: %q\ntemplate:\n%s", from, template)
	}
	for _, tc := range []struct {
		name, spec string
		want       []string
	}{
		{"wrong channel id", sms("no-such-channel"),
			[]string{":5: channel_id no-such-channel is not a channel of this OneRoute account", "sms channels: " + sandbox.SMSChannelID}},
		{"channel of another medium", sms(sandbox.EmailChannelID),
			[]string{":5: channel_id " + sandbox.EmailChannelID + " is an email channel, not an sms one", "sms channels: " + sandbox.SMSChannelID}},
		{"from is not a whatsapp number", wa("+2348011111111", "  name: first_welcome_messsage\n  parameters: [\"{{.name}}\"]\n"),
			[]string{":4: from +2348011111111 is not the number of a WhatsApp channel", "whatsapp numbers: " + sandbox.WhatsAppNumber}},
		{"unknown template", wa(sandbox.WhatsAppNumber, "  name: welcome_typo\n  parameters: [\"{{.name}}\"]\n"),
			[]string{":6: template welcome_typo is not a template", "first_welcome_messsage (en, 1 parameter)"}},
		{"pending template", wa(sandbox.WhatsAppNumber, "  name: summer_promo\n  parameters: [\"{{.name}}\"]\n"),
			[]string{":6: template summer_promo is pending, not approved"}},
		{"wrong language", wa(sandbox.WhatsAppNumber, "  name: bienvenue\n  language: en\n  parameters: [\"{{.name}}\"]\n"),
			[]string{":7: template bienvenue has no en version (it is in fr): set template.language to fr"}},
		{"wrong parameter count", wa(sandbox.WhatsAppNumber, "  name: order_shipped\n  parameters: [\"{{.name}}\"]\n"),
			[]string{":7: template order_shipped takes 2 parameters", "the spec gives 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := b.spec(t, "c", tc.spec)
			for _, args := range [][]string{{"--dry-run"}, {}, {"--detach"}, {"--dry-run", "--json"}} {
				code := b.run(t, append(append([]string{"dispatch"}, args...), path)...)
				stderr := b.stderr.String()
				if code != exitBadInput {
					t.Errorf("dispatch %v: exit %d, want %d\n%s", args, code, exitBadInput, stderr)
				}
				for _, w := range append([]string{"c.yaml" + tc.want[0], "nothing was enqueued"}, tc.want[1:]...) {
					if !strings.Contains(stderr, w) {
						t.Errorf("dispatch %v: stderr lacks %q:\n%s", args, w, stderr)
					}
				}
				if b.stdout.Len() > 0 {
					t.Errorf("dispatch %v printed %q on stdout", args, b.stdout.String())
				}
				if n := b.keys(t); n != 0 {
					t.Fatalf("dispatch %v: Redis holds %d keys, want none", args, n)
				}
			}
		})
	}
}

// A spec that matches the account passes the preflight and is enqueued.
func TestPreflightPassesDispatch(t *testing.T) {
	t.Parallel()
	b := setupPreflight(t)
	path := b.spec(t, "ok", fmt.Sprintf("id: pf-ok\nchannel: whatsapp_template\nrecipients: r.csv\nfrom: %q\ntemplate:\n  name: order_shipped\n  parameters: [\"{{.name}}\", \"A-{{.name}}\"]\n", sandbox.WhatsAppNumber))
	if code := b.run(t, "dispatch", "--json", path); code != exitOK {
		t.Fatalf("exit %d\n%s", code, b.stderr.String())
	}
	if strings.Contains(b.stderr.String(), "preflight skipped") {
		t.Errorf("the preflight was skipped:\n%s", b.stderr.String())
	}
	if n := b.keys(t); n == 0 {
		t.Errorf("nothing was enqueued")
	}
}

// --offline skips the preflight, so a dry run needs no key and no
// OneRoute, and says so on standard error; without it a dry run without a
// key names the flag.
func TestPreflightOffline(t *testing.T) {
	t.Parallel()
	b := setupPreflight(t)
	path := b.spec(t, "off", "id: off\nchannel: sms\nmessage: hi\nrecipients: r.csv\nchannel_id: no-such-channel\n")
	delete(b.env, "ONEROUTE_API_KEY")
	b.env["ONEROUTE_BASE_URL"] = "http://127.0.0.1:1"
	if code := b.run(t, "dispatch", "--dry-run", "--offline", "--json", path); code != exitOK {
		t.Fatalf("--offline: exit %d\n%s", code, b.stderr.String())
	}
	if got := b.stderr.String(); !strings.Contains(got, "preflight skipped (--offline): channel, template and parameters were not checked against OneRoute\n") {
		t.Errorf("stderr %q lacks the note", got)
	}
	if !strings.Contains(b.stdout.String(), `"valid":2`) {
		t.Errorf("stdout %s", b.stdout.String())
	}
	if code := b.run(t, "dispatch", "--dry-run", path); code != exitBadInput || !strings.Contains(b.stderr.String(), "ONEROUTE_API_KEY is not set") ||
		!strings.Contains(b.stderr.String(), "--offline skips it") {
		t.Errorf("dry run without key: exit %d\n%s", code, b.stderr.String())
	}
}

// A OneRoute that refuses the key is a runtime error (exit 1), not a
// finding in the spec; nothing is enqueued and the message names
// --offline.
func TestPreflightOneRouteRefuses(t *testing.T) {
	t.Parallel()
	b := setupPreflight(t)
	b.env["ONEROUTE_API_KEY"] = "live_not_the_sandbox"
	path := b.spec(t, "c", fmt.Sprintf("id: pf\nchannel: sms\nmessage: hi\nrecipients: r.csv\nchannel_id: %s\n", sandbox.SMSChannelID))
	if code := b.run(t, "dispatch", path); code != exitError || !strings.Contains(b.stderr.String(), "--offline") {
		t.Errorf("exit %d, want %d\n%s", code, exitError, b.stderr.String())
	}
	if n := b.keys(t); n != 0 {
		t.Errorf("Redis holds %d keys, want none", n)
	}
}

// fanout run --sandbox checks the spec against its sandbox before sending.
func TestPreflightRefusesRun(t *testing.T) {
	t.Parallel()
	b := setupPreflight(t)
	path := b.spec(t, "run", fmt.Sprintf("channel: whatsapp_template\nrecipients: r.csv\nfrom: %q\ntemplate:\n  name: summer_promo\n  parameters: [\"{{.name}}\"]\n", sandbox.WhatsAppNumber))
	delete(b.env, "REDIS_URL")
	if code := b.run(t, "run", "--sandbox", path); code != exitBadInput || !strings.Contains(b.stderr.String(), "run.yaml:5: template summer_promo is pending") {
		t.Errorf("exit %d\n%s", code, b.stderr.String())
	}
}

// channels and templates list what a spec can name, as JSON for scripts
// and as a table.
func TestChannelsAndTemplates(t *testing.T) {
	t.Parallel()
	b := setupPreflight(t)
	if code := b.run(t, "channels", "--json"); code != exitOK {
		t.Fatalf("channels: exit %d\n%s", code, b.stderr.String())
	}
	var chans []channelJSON
	if err := json.Unmarshal(b.stdout.Bytes(), &chans); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range chans {
		got = append(got, c.Medium+" "+c.ID+" "+c.Sender)
	}
	want := []string{"sms " + sandbox.SMSChannelID + " " + sandbox.SMSSenderID, "whatsapp " + sandbox.WhatsAppChannelID + " " + sandbox.WhatsAppNumber,
		"email " + sandbox.EmailChannelID + " " + sandbox.EmailAddress}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("channels --json (-want +got):\n%s", d)
	}
	if code := b.run(t, "channels", "whatsapp"); code != exitOK || !strings.HasPrefix(b.stdout.String(), "MEDIUM") ||
		!strings.Contains(b.stdout.String(), sandbox.WhatsAppNumber) || strings.Contains(b.stdout.String(), sandbox.SMSChannelID) {
		t.Errorf("channels whatsapp: exit %d\n%s%s", code, b.stdout.String(), b.stderr.String())
	}
	if code := b.run(t, "channels", "fax"); code != exitBadInput || !strings.Contains(b.stderr.String(), "use sms, whatsapp or email") {
		t.Errorf("channels fax: exit %d\n%s", code, b.stderr.String())
	}

	for _, arg := range []string{sandbox.WhatsAppNumber, "+" + sandbox.WhatsAppNumber, sandbox.WhatsAppChannelID} {
		if code := b.run(t, "templates", "--json", arg); code != exitOK {
			t.Fatalf("templates %s: exit %d\n%s", arg, code, b.stderr.String())
		}
		var tmpls []templateJSON
		if err := json.Unmarshal(b.stdout.Bytes(), &tmpls); err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, tp := range tmpls {
			got = append(got, fmt.Sprintf("%s %s %s %d %d", tp.Name, tp.Language, tp.Status, tp.Parameters, tp.Buttons))
		}
		want = []string{"first_welcome_messsage en approved 1 0", "new_conversation en approved 1 0", "otp_auth en approved 1 1",
			"summer_promo en pending 1 0", "order_shipped en approved 2 0", "bienvenue fr approved 1 0",
			"new_collection en approved 1 0", "track_order en approved 1 2"}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("templates %s --json (-want +got):\n%s", arg, d)
		}
	}
	if code := b.run(t, "templates", sandbox.SMSChannelID); code != exitBadInput || !strings.Contains(b.stderr.String(), "not a WhatsApp channel of this account: use one of "+sandbox.WhatsAppNumber) {
		t.Errorf("templates of an SMS channel: exit %d\n%s", code, b.stderr.String())
	}
	if code := b.run(t, "templates", sandbox.WhatsAppNumber); code != exitOK || !strings.Contains(b.stdout.String(), "bienvenue") || !strings.HasPrefix(b.stdout.String(), "NAME") {
		t.Errorf("templates table: exit %d\n%s", code, b.stdout.String())
	}
}
