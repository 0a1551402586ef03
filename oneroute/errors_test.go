package oneroute

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestClassify is the specification of Classify: every kind of answer and
// transport failure maps to the one decision the caller must take.
func TestClassify(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"no error", nil, OK},
		{"400 validation", &APIError{Status: 400, Message: `"message" is required`}, Permanent},
		{"404 channel not found", &APIError{Status: 404, Message: "Channel not found"}, Permanent},
		{"400 invalid number", &APIError{Status: 400, Message: `"to" must be a valid phone number`}, Permanent},
		{"400 template rejected", &APIError{Status: 400, Message: "Template promo not found or not approved"}, Permanent},
		{"409 conflict", &APIError{Status: 409, Message: "Conflict"}, Permanent},
		{"success false with 200", &APIError{Status: 200, Message: "OTP already used!!"}, Permanent},
		{"401 invalid key", &APIError{Status: 401, Message: "Invalid API Key"}, Unauthorized},
		{"403 forbidden", &APIError{Status: 403, Message: "Forbidden"}, Unauthorized},
		{"200 with code 401 in the body", &APIError{Status: 200, Code: 401, Message: "Invalid API Key"}, Unauthorized},
		{"429 with Retry-After seconds", &APIError{Status: 429, Message: "Too many requests", RetryAfter: 2 * time.Second}, Throttled},
		{"429 with Retry-After date", &APIError{Status: 429, Message: "Too many requests", RetryAfter: 90 * time.Second}, Throttled},
		{"429 without Retry-After", &APIError{Status: 429, Message: "Too many requests"}, Throttled},
		{"500", &APIError{Status: 500, Message: "Internal server error"}, Temporary},
		{"501", &APIError{Status: 501, Message: "Not Implemented"}, Temporary},
		// A gateway's answer does not prove the request was refused: it may
		// have timed out on a request OneRoute processed.
		{"502 from a gateway", &APIError{Status: 502, Message: "Bad Gateway"}, Ambiguous},
		{"503 from a gateway", &APIError{Status: 503, Message: "Service Unavailable"}, Ambiguous},
		{"504 from a gateway", &APIError{Status: 504, Message: "Gateway Timeout"}, Ambiguous},
		{"200 with code 504 in the body", &APIError{Status: 200, Code: 504, Message: "Gateway Timeout"}, Ambiguous},
		{"oversize 504 body", &APIError{Status: 504, Message: "over the cap", oversize: true}, Ambiguous},
		{"408 request timeout", &APIError{Status: 408, Message: "Request Timeout"}, Temporary},
		{"302 redirect not followed", &APIError{Status: 302, Message: "Found"}, Temporary},
		{"refused before the request was written", &TransportError{Op: "send sms", Err: refused}, Temporary},
		{"dial timeout before the request was written", &TransportError{Op: "send sms", Err: context.DeadlineExceeded}, Temporary},
		{"timeout after the request was written", &TransportError{Op: "send sms", Written: true, Err: context.DeadlineExceeded}, Ambiguous},
		{"reset after the request was written", &TransportError{Op: "send sms", Written: true, Err: reset}, Ambiguous},
		{"caller cancelled after the request was written", &TransportError{Op: "send sms", Written: true, Err: context.Canceled}, Ambiguous},
		{"oversize 200 body", &APIError{Status: 200, Message: "over the cap", oversize: true}, Ambiguous},
		{"oversize 500 body", &APIError{Status: 500, Message: "over the cap", oversize: true}, Temporary},
		{"oversize 400 body", &APIError{Status: 400, Message: "over the cap", oversize: true}, Permanent},
		{"unreadable 200 body", &APIError{Status: 200, Message: "not JSON", malformed: true}, Ambiguous},
		{"wrapped 429", fmt.Errorf("batch 3: %w", &APIError{Status: 429}), Throttled},
		{"wrapped ambiguous", fmt.Errorf("batch 3: %w", &TransportError{Written: true, Err: reset}), Ambiguous},
		{"invalid request", fmt.Errorf("oneroute send sms: %w: empty channel id", ErrInvalidRequest), Permanent},
		{"bare refused", refused, Temporary},
		{"bare deadline", context.DeadlineExceeded, Temporary},
		{"anything else", errors.New("boom"), Permanent},
	}
	got := map[string]string{}
	want := map[string]string{}
	for _, tc := range tests {
		got[tc.name] = Classify(tc.err).String()
		want[tc.name] = tc.want.String()
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Classify mismatch (-want +got):\n%s", d)
	}
}

// TestAPIErrorIs protects the sentinels callers branch on instead of
// reading OneRoute's message text.
func TestAPIErrorIs(t *testing.T) {
	t.Parallel()
	sentinels := map[string]error{
		"ErrNotFound": ErrNotFound, "ErrTemplateRejected": ErrTemplateRejected, "ErrSessionExpired": ErrSessionExpired,
		"ErrOTPUsed": ErrOTPUsed, "ErrOTPExpired": ErrOTPExpired, "ErrOTPMismatch": ErrOTPMismatch, "ErrOTPKeyInvalid": ErrOTPKeyInvalid,
	}
	tests := []struct {
		name string
		err  *APIError
		want []string
	}{
		{"channel not found", &APIError{Status: 404, Message: "Channel not found"}, []string{"ErrNotFound"}},
		{"template unknown", &APIError{Status: 400, Message: "Template promo not found or not approved"}, []string{"ErrTemplateRejected"}},
		{"template pending", &APIError{Status: 400, Message: "Template summer_promo is pending, not approved"}, []string{"ErrTemplateRejected"}},
		{"session expired", &APIError{Status: 400, Message: "Session expired, use a template message"}, []string{"ErrSessionExpired"}},
		{"otp used", &APIError{Status: 400, Message: "OTP already used!!"}, []string{"ErrOTPUsed"}},
		{"otp used, 200 and success false", &APIError{Status: 200, Message: "OTP already used!!"}, []string{"ErrOTPUsed"}},
		{"otp expired", &APIError{Status: 400, Message: "OTP expired"}, []string{"ErrOTPExpired"}},
		{"otp wrong", &APIError{Status: 400, Message: "Invalid OTP"}, []string{"ErrOTPMismatch"}},
		{"otp key", &APIError{Status: 400, Message: "Invalid key"}, []string{"ErrOTPKeyInvalid"}},
		{"5xx says nothing", &APIError{Status: 500, Message: "Template not found"}, nil},
		{"validation", &APIError{Status: 400, Message: `"message" is required`}, nil},
	}
	for _, tc := range tests {
		var got []string
		for _, name := range []string{"ErrNotFound", "ErrTemplateRejected", "ErrSessionExpired", "ErrOTPUsed", "ErrOTPExpired", "ErrOTPMismatch", "ErrOTPKeyInvalid"} {
			if errors.Is(fmt.Errorf("wrapped: %w", tc.err), sentinels[name]) {
				got = append(got, name)
			}
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s: errors.Is mismatch (-want +got):\n%s", tc.name, d)
		}
	}
	if !IsTemplateRejected(&APIError{Status: 400, Message: "Template x does not exist"}) {
		t.Error("IsTemplateRejected: want true for a template that does not exist")
	}
}

// TestParseRetryAfter covers both forms RFC 9110 allows, and rejects the
// rest rather than waiting a wrong amount.
func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                               0,
		"2":                              2 * time.Second,
		" 30 ":                           30 * time.Second,
		"0":                              0,
		"-5":                             0,
		"soon":                           0,
		"99999999":                       24 * time.Hour,
		"Sun, 01 Mar 2026 12:01:30 GMT":  90 * time.Second,
		"Sun, 01 Mar 2026 11:59:00 GMT":  0,
		"Sunday, 01-Mar-26 12:00:10 GMT": 10 * time.Second,
	}
	got := map[string]time.Duration{}
	for in := range tests {
		got[in] = parseRetryAfter(in, now)
	}
	if d := cmp.Diff(tests, got); d != "" {
		t.Errorf("parseRetryAfter mismatch (-want +got):\n%s", d)
	}
}

// TestErrorStrings keeps errors readable and free of URLs.
func TestErrorStrings(t *testing.T) {
	t.Parallel()
	got := []string{
		(&APIError{Op: "send sms", Status: 429, Message: "Too many requests", RetryAfter: time.Second}).Error(),
		(&TransportError{Op: "send sms", Written: true, Err: context.DeadlineExceeded}).Error(),
		(&TransportError{Op: "send sms", Err: errors.New("dial tcp: connection refused")}).Error(),
		Class(42).String(),
	}
	want := []string{
		"oneroute send sms: HTTP 429: Too many requests (retry after 1s)",
		"oneroute send sms: context deadline exceeded, after the request was sent (the message may have been accepted)",
		"oneroute send sms: dial tcp: connection refused, before the request was sent",
		"Class(42)",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("mismatch (-want +got):\n%s", d)
	}
}
