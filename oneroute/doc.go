// Package oneroute is a client for the OneRoute messaging API: WhatsApp
// (templates, campaigns, session messages), SMS (channel sends, OTP route,
// message lists, delivery reports), email, OneOTP, the Embed push
// notification, channels and logs, and the webhooks OneRoute pushes back.
//
// Every failure comes back as a typed error, and Classify sorts it into what
// the caller should do next:
//
//	c, err := oneroute.New(oneroute.Options{APIKey: key, UserAgent: "fanout/1.2.0"})
//	res, err := c.SendSMS(ctx, channelID, oneroute.SMSRequest{Message: "Hi", Recipients: []string{"+2348031234567"}})
//	switch oneroute.Classify(err) {
//	case oneroute.OK:           // res[i].Response is each message id
//	case oneroute.Permanent:    // the request is wrong; do not retry it
//	case oneroute.Unauthorized: // pause everything until the key is fixed
//	case oneroute.Throttled:    // wait oneroute.RetryAfter(err), not a failure
//	case oneroute.Temporary:    // nothing happened; retry with backoff
//	case oneroute.Ambiguous:    // it may have been sent: reconcile before resending
//	}
//
// The client is tolerant where the published API is uncertain: it reads the
// payload from "data" or "body", ignores unknown fields, copes with missing
// pagination metadata and with the alternative error shapes
// ({"errors":[{"message"}]}, {"error":"..."}, a "code" in the body). Phone
// numbers go out as each endpoint expects them: digits without '+' for the
// messaging endpoints (Phone), with a leading '+' for OneOTP (OTPPhone).
//
// The API key travels only in the apiKey header; it never appears in an
// error, a log line or a URL.
//
// Webhooks: VerifySignature checks x-oneroute-signature (hex HMAC-SHA512 of
// the raw body), ParseEvent decodes the events, and WebhookVerifier combines
// both with a replay guard into an http.Handler.
//
// The fake server in oneroute/sandbox implements the same API for tests,
// demos and benchmarks.
package oneroute
