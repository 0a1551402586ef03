package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

// fanout otp: list templates, send a code through OneOTP, verify it (a
// wrong code and a reused one exit 3 with the reason), and send an OTP SMS.
func TestOTPSendAndVerify(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{})
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	cli := func(t *testing.T, args ...string) (*testBundle, int) {
		b := setup(t)
		b.env["ONEROUTE_BASE_URL"], b.env["ONEROUTE_API_KEY"] = api.URL, "test_otp"
		return b, b.run(t, append([]string{"otp"}, args...)...)
	}

	b, code := cli(t, "templates", "--json")
	var ts []struct{ ID, Name string }
	if code != exitOK || json.Unmarshal(b.stdout.Bytes(), &ts) != nil || len(ts) == 0 {
		t.Fatalf("otp templates: exit %d, stdout %q, stderr %q", code, b.stdout.String(), b.stderr.String())
	}

	b, code = cli(t, "send", "--template", ts[0].ID, "--to", "0803 123 4567", "--channels", "sms,whatsapp", "--length", "6", "--json")
	var sent otpSent
	if code != exitOK || json.Unmarshal(b.stdout.Bytes(), &sent) != nil || sent.Key == "" || len(sent.Sent) != 2 {
		t.Fatalf("otp send: exit %d, stdout %q, stderr %q", code, b.stdout.String(), b.stderr.String())
	}
	resp, err := http.Get(api.URL + "/sandbox/otp/" + sent.Key)
	if err != nil {
		t.Fatal(err)
	}
	var peek struct {
		Data struct {
			OTP         string `json:"otp"`
			PhoneNumber string `json:"phoneNumber"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&peek); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(peek.Data.OTP) != 6 || peek.Data.PhoneNumber != "+2348031234567" {
		t.Fatalf("the sandbox issued %+v; want a 6-digit code for +2348031234567", peek.Data)
	}

	wrong := "000000"
	if peek.Data.OTP == wrong {
		wrong = "111111"
	}
	verify := func(code string) (otpVerified, int, string) {
		b, exit := cli(t, "verify", "--key", sent.Key, "--code", code, "--to", "+234 803 123 4567", "--json")
		var v otpVerified
		if err := json.Unmarshal(b.stdout.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		return v, exit, b.stderr.String()
	}
	if v, exit, stderr := verify(wrong); exit != exitOTPRefused || v.Verified || v.Reason != "mismatch" {
		t.Fatalf("wrong code: exit %d, %+v, stderr %q; want 3, mismatch", exit, v, stderr)
	}
	if v, exit, stderr := verify(peek.Data.OTP); exit != exitOK || !v.Verified {
		t.Fatalf("right code: exit %d, %+v, stderr %q; want 0, verified", exit, v, stderr)
	}
	if v, exit, _ := verify(peek.Data.OTP); exit != exitOTPRefused || v.Reason != "used" {
		t.Fatalf("reused code: exit %d, %+v; want 3, used", exit, v)
	}

	before := sb.Stats().Accepted
	b, code = cli(t, "send", "--to", "+2348031234567", "--message", "Your code is 4821")
	if code != exitOK || !strings.Contains(b.stdout.String(), "sent by sms: ") || sb.Stats().Accepted != before+1 {
		t.Fatalf("otp send --message: exit %d, stdout %q, stderr %q, accepted %d→%d", code, b.stdout.String(), b.stderr.String(), before, sb.Stats().Accepted)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "--to", "+2348031234567"}, "want --template"},
		{[]string{"send", "--template", "x", "--channels", "email"}, "needs --email"},
		{[]string{"send", "--template", "x", "--to", "12", "--channels", "sms"}, "--to:"},
		{[]string{"send", "--template", "x", "--to", "+2348031234567", "--channels", "fax"}, "unknown medium"},
		{[]string{"verify", "--key", "k", "--code", "1"}, "one of --to or --email"},
		{[]string{"frobnicate"}, "unknown otp command"},
	} {
		b, code := cli(t, tc.args...)
		if code != exitBadInput || !strings.Contains(b.stderr.String(), tc.want) {
			t.Errorf("otp %v: exit %d, stderr %q; want 2 and %q", tc.args, code, b.stderr.String(), tc.want)
		}
	}
}
