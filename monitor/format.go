package monitor

import (
	"fmt"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/tasks"
)

// FormatPayload is the Asynq UI's view of a fanout task payload: one short
// line naming the campaign, the batch and how many recipients it carries
// ("spring-sale · batch 12 · 50 recipients"), never an address, a message
// text or a provider id. A payload it cannot read is
// shown by its size only.
func FormatPayload(taskType string, payload []byte) string {
	switch taskType {
	case tasks.TypeSMSSend, tasks.TypeWhatsAppTemplate, tasks.TypeEmailSend, tasks.TypeWhatsAppSession, tasks.TypeWhatsAppCampaign, tasks.TypePushSend:
		var b campaigns.Batch
		if tasks.Decode(payload, &b) != nil {
			break
		}
		s := fmt.Sprintf("%s · batch %d", b.Campaign, b.Seq)
		if b.Attempt > 0 {
			s += fmt.Sprintf(" follow-up %d", b.Attempt)
		}
		s += fmt.Sprintf(" · %d %s", len(b.Items), plural(len(b.Items), "recipient", "recipients"))
		if b.Failures > 0 {
			s += fmt.Sprintf(" · %d temporary %s so far", b.Failures, plural(b.Failures, "failure", "failures"))
		}
		return s
	case tasks.TypeDLRPoll:
		var p tasks.DLRPoll
		if tasks.Decode(payload, &p) != nil {
			break
		}
		return fmt.Sprintf("%s · delivery reports of %s round %d · %d %s",
			p.Campaign, p.Key, p.Attempt+1, len(p.Items), plural(len(p.Items), "message", "messages"))
	case tasks.TypeExpand:
		var p tasks.Expand
		if tasks.Decode(payload, &p) != nil {
			break
		}
		return fmt.Sprintf("%s · expansion of the uploaded file, part %d", p.Campaign, p.Gen+1)
	}
	return fmt.Sprintf("%d bytes (not shown)", len(payload))
}

// FormatResult is the Asynq UI's view of a task result: fanout writes none,
// and whatever is there is shown by its size only.
func FormatResult(_ string, result []byte) string {
	if len(result) == 0 {
		return ""
	}
	return fmt.Sprintf("%d bytes (not shown)", len(result))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
