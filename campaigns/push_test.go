package campaigns_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/campaigns"
)

// A push spec names its widget, title and message, and its mistakes are
// refused at the line of the key to fix.
func TestPushSpec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"no widget", "channel: push\ntitle: Hi\nmessage: hi\nrecipients: r.csv\n", "c.yaml:1: channel push needs widget_id"},
		{"no title", "channel: push\nwidget_id: w\nmessage: hi\nrecipients: r.csv\n", "c.yaml:1: channel push needs title"},
		{"no message", "channel: push\nwidget_id: w\ntitle: Hi\nrecipients: r.csv\n", "c.yaml:1: channel push needs message"},
		{"bad url", "channel: push\nwidget_id: w\ntitle: Hi\nmessage: hi\nurl: ftp://x\nrecipients: r.csv\n", `c.yaml:5: url "ftp://x": use an http:// or https:// URL`},
		{"bad title template", "channel: push\nwidget_id: w\ntitle: \"Hi {{range .x}}\"\nmessage: hi\nrecipients: r.csv\n", "c.yaml:3: title:"},
		{"bad url template", "channel: push\nwidget_id: w\ntitle: Hi\nmessage: hi\nurl: \"https://x/{{call .f}}\"\nrecipients: r.csv\n", "c.yaml:5: url:"},
		{"channel_id", "channel: push\nwidget_id: w\ntitle: Hi\nmessage: hi\nchannel_id: c\nrecipients: r.csv\n", "c.yaml:5: channel_id is not used by push"},
		{"widget on sms", "channel: sms\nchannel_id: x\nmessage: hi\nwidget_id: w\nrecipients: r.csv\n", "c.yaml:4: widget_id is for channel push"},
		{"title on email", "channel: email\nchannel_id: x\nsubject: s\nmessage: hi\ntitle: t\nrecipients: r.csv\n", "c.yaml:5: title is for channel push"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaigns.ParseSpec("c.yaml", []byte(tc.spec))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// A push's title, message and url render per recipient; the rate limit is
// shared per widget.
func TestPushRender(t *testing.T) {
	t.Parallel()
	s, err := campaigns.ParseSpec("c.yaml", []byte("channel: push\nwidget_id: w1\ntitle: \"Hi {{.name}}\"\nmessage: \"Order {{.order}} shipped\"\nurl: \"https://shop.example/o/{{.order}}\"\nrecipients: r.csv\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"name", "order"}, r.Fields()); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	c, err := r.Render(map[string]string{"name": "Ada", "order": "42"})
	if err != nil {
		t.Fatal(err)
	}
	want := campaigns.Content{Subject: "Hi Ada", Text: "Order 42 shipped", URL: "https://shop.example/o/42"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("content (-want +got):\n%s", diff)
	}
	if _, err := r.Render(map[string]string{"order": "42"}); err == nil {
		t.Error("a title missing its field was not refused")
	} else if re := (*campaigns.RenderError)(nil); !errors.As(err, &re) || re.Key != "title" {
		t.Errorf("title missing its field: %v, want a RenderError at key title", err)
	}
	b := campaigns.Batch{Channel: campaigns.ChannelPush, WidgetID: "w1"}
	if got := b.Sender(); got != "push:w1" {
		t.Errorf("Sender() = %q, want push:w1", got)
	}
	if campaigns.ChannelPush.Tracked() {
		t.Error("push is tracked; it has no delivery status")
	}
}
