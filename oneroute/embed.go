package oneroute

import "context"

// PushRequest is the body of the Embed push notification.
type PushRequest struct {
	// WidgetID is the live-chat widget.
	WidgetID string `json:"widgetId"`
	// CustomerID or Email names the customer; one is required.
	CustomerID string `json:"customerId,omitempty"`
	Email      string `json:"email,omitempty"`
	// Title and Message are the notification.
	Title   string `json:"title"`
	Message string `json:"message"`
	// URL opens when the customer taps it (optional).
	URL string `json:"url,omitempty"`
}

// SendPush sends a push notification to a widget customer
// (POST /api/public/embed/push; the path and shape are not documented by
// OneRoute and follow the project's reference). It returns the
// notification id.
func (c *Client) SendPush(ctx context.Context, r PushRequest) (id string, err error) {
	var out struct {
		ID string `json:"id"`
	}
	if _, err := c.send(ctx, call{op: "send push", method: "POST", path: "/api/public/embed/push", in: r, out: &out}); err != nil {
		return "", err
	}
	return out.ID, nil
}
