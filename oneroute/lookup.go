package oneroute

import (
	"context"
	"net/url"
)

// FetchSMSMessagesTo lists a channel's SMS one page at a time, asking the
// server to keep only those to one number (E.164) with a `to` query
// parameter. The published API documents only status and paging, so the
// server may ignore `to`: callers must filter the page themselves.
// Reconciliation uses it to prove whether an ambiguous send reached OneRoute.
func (c *Client) FetchSMSMessagesTo(ctx context.Context, channelID, to string, p Page) ([]SMSMessage, *Meta, error) {
	q := url.Values{}
	q.Set("to", Phone(to))
	var out []SMSMessage
	meta, err := c.do(ctx, "fetch sms messages", "GET", "/api/public/channel/"+url.PathEscape(channelID)+"/sms", p.values(q), nil, &out, false)
	if err != nil {
		return nil, meta, err
	}
	return out, meta, nil
}
