package oneroute

import (
	"context"
	"net/url"
)

// FetchSMSMessagesTo lists a channel's SMS to one number (E.164), newest
// first where the server sorts, one page at a time. It asks the server to
// filter with a `to` query parameter and filters the page itself as well, so
// the answer is right whether or not the server honours the parameter (the
// published API documents only status and paging). Reconciliation uses it to
// prove whether an ambiguous send reached OneRoute.
func (c *Client) FetchSMSMessagesTo(ctx context.Context, channelID, to string, p Page) (page []SMSMessage, raw int, meta *Meta, err error) {
	q := url.Values{}
	q.Set("to", Phone(to))
	var out []SMSMessage
	meta, err = c.do(ctx, "fetch sms messages", "GET", "/api/public/channel/"+url.PathEscape(channelID)+"/sms", p.values(q), nil, &out, false)
	if err != nil {
		return nil, 0, meta, err
	}
	want := Phone(to)
	for _, m := range out {
		if Phone(m.To) == want {
			page = append(page, m)
		}
	}
	return page, len(out), meta, nil
}
