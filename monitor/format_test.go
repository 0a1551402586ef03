package monitor

import (
	"regexp"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/tasks"
)

// phoneOrEmail matches what looks like a phone number or an email address.
var phoneOrEmail = regexp.MustCompile(`\+?\d{7,}|[^\s@]+@[^\s@]+\.[a-z]{2,}`)

// The Asynq UI shows a fanout payload as one line with the campaign, the
// batch and the recipient count, and never an address, a text or a
// provider id, whatever the task type.
func TestFormatPayload(t *testing.T) {
	t.Parallel()
	batch := &campaigns.Batch{Campaign: "spring", Seq: 12, Channel: campaigns.ChannelSMS, Shared: &campaigns.Content{Text: "Hi there"},
		Items: []campaigns.Item{{Row: 1, To: "+2348031234567"}, {Row: 2, To: "+2348031234568"}}}
	follow := *batch
	follow.Attempt, follow.Failures = 2, 1
	email := &campaigns.Batch{Campaign: "news", Seq: 3, Channel: campaigns.ChannelEmail, Items: []campaigns.Item{{Row: 9, To: "ada@example.com"}}}
	for _, c := range []struct {
		name, typ string
		payload   []byte
		want      string
	}{
		{"sms batch", tasks.TypeSMSSend, tasks.Encode(batch), "spring · batch 12 · 2 recipients"},
		{"follow-up", tasks.TypeSMSSend, tasks.Encode(&follow), "spring · batch 12 follow-up 2 · 2 recipients · 1 temporary failure so far"},
		{"email", tasks.TypeEmailSend, tasks.Encode(email), "news · batch 3 · 1 recipient"},
		{"dlr poll", tasks.TypeDLRPoll, tasks.Encode(&tasks.DLRPoll{Campaign: "spring", Key: "b12", Attempt: 1,
			Items: []tasks.DLRItem{{Row: 1, ID: "msg-0123456789"}}}), "spring · delivery reports of b12 round 2 · 1 message"},
		{"expand", tasks.TypeExpand, tasks.Encode(tasks.Expand{Campaign: "spring", Gen: 0}), "spring · expansion of the uploaded file, part 1"},
		{"unreadable", tasks.TypeSMSSend, []byte(`{"to":"+2348031234567"`), "22 bytes (not shown)"},
		{"unknown type", "other:thing", []byte(`{"to":"+2348031234567"}`), "23 bytes (not shown)"},
	} {
		got := FormatPayload(c.typ, c.payload)
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if m := phoneOrEmail.FindString(got); m != "" {
			t.Errorf("%s shows %q", c.name, m)
		}
	}
	if got := FormatResult("sms:send", []byte("+2348031234567")); got != "14 bytes (not shown)" {
		t.Errorf("FormatResult = %q", got)
	}
}
