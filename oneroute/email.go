package oneroute

import "context"

// EmailAttachment is a file attached to an email by URL.
type EmailAttachment struct {
	// URL is where OneRoute fetches the file.
	URL string `json:"url"`
	// Name is the file name the recipient sees.
	Name string `json:"name"`
}

// EmailRequest is the body of Send Email to Customers.
type EmailRequest struct {
	// Subject is the subject line.
	Subject string `json:"subject"`
	// Message is the HTML or text body.
	Message string `json:"message"`
	// Recipients are addresses; one Result each.
	Recipients []string `json:"recipients"`
	// CC and BCC are optional copies.
	CC  []string `json:"cc,omitempty"`
	BCC []string `json:"bcc,omitempty"`
	// ReplyTo is an optional reply address.
	ReplyTo string `json:"replyTo,omitempty"`
	// Attachments are optional files.
	Attachments []EmailAttachment `json:"attachments,omitempty"`
	// Identifiers are caller-chosen message ids, one per recipient in the
	// same order: they name the messages in FetchLogs. Guessed (not in
	// OneRoute's documentation, oneroute-api.md 4.2); the sandbox honours
	// it, and a server that ignores it only loses the Logs fallback.
	Identifiers []string `json:"identifiers,omitempty"`
}

// SendEmail sends one email to many addresses through an email channel
// (POST /api/public/channel/{id}/email). One Result per recipient.
func (c *Client) SendEmail(ctx context.Context, channelID string, r EmailRequest) ([]Result, error) {
	const op = "send email"
	id, err := pathID(op, "channel id", channelID)
	if err != nil {
		return nil, err
	}
	var out []Result
	if _, err := c.send(ctx, call{op: op, method: "POST", path: "/api/public/channel/" + id + "/email", in: r, out: &out}); err != nil {
		return nil, err
	}
	return out, checkResults(op, out, len(r.Recipients))
}
