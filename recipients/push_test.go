package recipients

import (
	"errors"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
)

// A push recipient's key is its customer id, or its email address
// normalised: the ledger and dedupe key.
func TestNormalizeCustomer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"cust-1", "cust-1"},
		{"  cust-1 ", "cust-1"},
		{"Ada@Example.COM", "ada@example.com"},
		{" ada@example.com", "ada@example.com"},
	} {
		got, err := NormalizeCustomer(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeCustomer(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "  ", "a b", "x\x00y", "ada@", strings.Repeat("x", MaxCustomerIDLen+1)} {
		if _, err := NormalizeCustomer(bad); !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("NormalizeCustomer(%q): %v, want ErrInvalidAddress", bad, err)
		}
	}
}

// customer_id wins over email when a push file has both; a file with
// neither is refused, naming the columns looked for.
func TestPushAddressField(t *testing.T) {
	t.Parallel()
	s := campaigns.Spec{Channel: campaigns.ChannelPush}
	for _, tc := range []struct {
		cols []string
		want string
	}{
		{[]string{"name", "email", "customer_id"}, "customer_id"},
		{[]string{"name", "Email"}, "Email"},
		{[]string{"customer_id"}, "customer_id"},
	} {
		got, err := AddressField(s, tc.cols)
		if err != nil || got != tc.want {
			t.Errorf("AddressField(%v) = %q, %v; want %q", tc.cols, got, err, tc.want)
		}
	}
	_, err := AddressField(s, []string{"name", "phone"})
	if err == nil || !strings.Contains(err.Error(), "customer_id, email") {
		t.Errorf("a file with neither column: %v, want the columns looked for", err)
	}
}

// FuzzNormalizeCustomer: a push key, once accepted, is non-empty, holds no
// space and is its own key (dedupe and opt-outs see one form).
func FuzzNormalizeCustomer(f *testing.F) {
	for _, s := range []string{"cust-1", " Ada@Example.com ", "a b", "", "x@y", "\u00a0id\u200b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := NormalizeCustomer(raw)
		if err != nil {
			return
		}
		if got == "" || strings.ContainsAny(got, " \t\r\n") {
			t.Fatalf("NormalizeCustomer(%q) = %q", raw, got)
		}
		again, err := NormalizeCustomer(got)
		if err != nil || again != got {
			t.Fatalf("NormalizeCustomer(%q) = %q, but again %q, %v", raw, got, again, err)
		}
	})
}

// A column a push's title or url refers to and the file lacks is reported
// at that key's line.
func TestPushCheckColumnsLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ spec, want string }{
		{"channel: push\nwidget_id: w\ntitle: \"Hi {{.name}}\"\nmessage: hi\nrecipients: r.csv\n", "c.yaml:3:"},
		{"channel: push\nwidget_id: w\ntitle: Hi\nmessage: hi\nurl: \"https://x/{{.order}}\"\nrecipients: r.csv\n", "c.yaml:5:"},
		{"channel: push\nwidget_id: w\ntitle: Hi\nmessage: \"{{.order}}\"\nrecipients: r.csv\n", "c.yaml:4:"},
	} {
		s, err := campaigns.ParseSpec("c.yaml", []byte(tc.spec))
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Compile()
		if err != nil {
			t.Fatal(err)
		}
		err = CheckColumns(s, r, "r.csv", []string{"customer_id"})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("spec:\n%s\ngot %v, want an error at %s", tc.spec, err, tc.want)
		}
	}
}
