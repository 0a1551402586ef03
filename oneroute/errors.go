package oneroute

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// Sentinel errors. An *APIError matches the ones that describe it with
// errors.Is, so callers never read OneRoute's message text themselves.
var (
	// ErrInvalidRequest is a request the client refused to send (an empty
	// id, a body that cannot be encoded). Permanent.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrNotFound matches a 404 answer (unknown channel, message or widget).
	ErrNotFound = errors.New("not found")
	// ErrTemplateRejected matches an answer that says the WhatsApp template
	// itself is unusable; see IsTemplateRejected.
	ErrTemplateRejected = errors.New("template rejected")
	// ErrSessionExpired matches the refusal of a session message outside the
	// customer's 24-hour window: send a template message instead.
	ErrSessionExpired = errors.New("session window closed")
	// ErrOTPUsed matches "OTP already used!!".
	ErrOTPUsed = errors.New("otp already used")
	// ErrOTPExpired matches "OTP expired": send a new OTP.
	ErrOTPExpired = errors.New("otp expired")
	// ErrOTPMismatch matches "Invalid OTP": the code the customer typed is
	// wrong.
	ErrOTPMismatch = errors.New("otp does not match")
	// ErrOTPKeyInvalid matches "Invalid key": the verification key is
	// unknown, or belongs to another identifier.
	ErrOTPKeyInvalid = errors.New("otp key invalid")
)

// APIError is an answer from OneRoute that is not a success: a non-2xx
// status, or "success": false whatever the status.
type APIError struct {
	// Op is the client operation, e.g. "send sms".
	Op string
	// Status is the HTTP status.
	Status int
	// Code is a numeric "code" field of the body, when there is one (the
	// widget API reports 401 that way); 0 otherwise.
	Code int
	// Message is OneRoute's message, e.g. "\"template\" is required".
	Message string
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration

	oversize  bool // the body was over the client's cap
	malformed bool // a 2xx answer the client could not read
}

// Error describes the answer without any request detail (no URL, no key).
func (e *APIError) Error() string {
	s := fmt.Sprintf("oneroute %s: HTTP %d: %s", e.Op, e.Status, e.Message)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// status is the effective status: a 2xx that carries an error code in its
// body counts as that code.
func (e *APIError) status() int {
	if e.Status >= 200 && e.Status < 300 && e.Code >= 400 && e.Code < 600 {
		return e.Code
	}
	return e.Status
}

// Is lets errors.Is match the sentinels that describe this answer.
func (e *APIError) Is(target error) bool {
	st := e.status()
	if st >= 500 || e.oversize || e.malformed {
		return false
	}
	m := strings.ToLower(e.Message)
	switch target {
	case ErrNotFound:
		return st == http.StatusNotFound
	case ErrTemplateRejected:
		return templateRejected(m)
	case ErrSessionExpired:
		return strings.Contains(m, "session") && (strings.Contains(m, "expired") || strings.Contains(m, "window"))
	case ErrOTPUsed:
		return strings.Contains(m, "already used")
	case ErrOTPExpired:
		return strings.Contains(m, "otp expired")
	case ErrOTPMismatch:
		return strings.Contains(m, "invalid otp")
	case ErrOTPKeyInvalid:
		return strings.Contains(m, "invalid key")
	}
	return false
}

// TransportError is a failure to get an answer at all. Written says whether
// the request had been fully written before it failed: if so, OneRoute may
// have accepted the message.
type TransportError struct {
	// Op is the client operation, e.g. "send sms".
	Op string
	// Written reports that the whole request was sent before the failure.
	Written bool
	// Err is the cause, with any URL removed.
	Err error
}

// Error says what failed and whether the request may have taken effect.
func (e *TransportError) Error() string {
	when := "before the request was sent"
	if e.Written {
		when = "after the request was sent (the message may have been accepted)"
	}
	return fmt.Sprintf("oneroute %s: %v, %s", e.Op, e.Err, when)
}

// Unwrap returns the cause, for errors.Is(err, context.DeadlineExceeded).
func (e *TransportError) Unwrap() error { return e.Err }

// Class sorts an error by what the caller should do next.
type Class int

// Error classes, as Classify returns them.
const (
	// OK means no error.
	OK Class = iota
	// Permanent means the request is wrong for good (validation, 404,
	// invalid number, success:false); do not retry it.
	Permanent
	// Unauthorized means the API key was refused (401, 403); every request
	// will fail until an operator fixes the key.
	Unauthorized
	// Throttled means the server asked to slow down (429); retry after
	// RetryAfter(err). It is not a failure.
	Throttled
	// Temporary means the request certainly did not take effect (500 and
	// the other 5xx OneRoute itself answers, 408, 425, connection refused
	// or reset before the request was written, a redirect); retry with
	// backoff.
	Temporary
	// Ambiguous means the request was written and then the answer was lost
	// (timeout, connection reset, an unreadable or oversized 2xx), or a
	// gateway in front of OneRoute answered in its place (502, 503, 504: it
	// may have passed the request on, and OneRoute may have accepted it):
	// the message may have been accepted. Reconcile before any resend.
	Ambiguous
)

var classNames = [...]string{"ok", "permanent", "unauthorized", "throttled", "temporary", "ambiguous"}

// String names the class: "ok", "permanent", ...
func (c Class) String() string {
	if c >= 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Classify says what kind of failure err is. It is the one place that maps
// OneRoute's answers and transport failures to decisions; its table test is
// the specification.
func Classify(err error) Class {
	if err == nil {
		return OK
	}
	var ae *APIError
	if errors.As(err, &ae) {
		st := ae.status()
		switch {
		case st == http.StatusUnauthorized || st == http.StatusForbidden:
			return Unauthorized
		case st == http.StatusTooManyRequests:
			return Throttled
		case gatewayStatus(st):
			// A gateway answered instead of OneRoute: it may have timed out
			// waiting for an answer to a request OneRoute processed.
			return Ambiguous
		case st >= 500:
			return Temporary
		case (ae.malformed || ae.oversize) && st >= 200 && st < 300:
			// A 2xx we cannot read: the message was probably accepted.
			return Ambiguous
		case st == http.StatusRequestTimeout || st == http.StatusTooEarly:
			// The server gave up before acting on the request.
			return Temporary
		case st >= 400:
			return Permanent
		case st >= 300:
			// A redirect was not followed, so nothing was done.
			return Temporary
		case st >= 200:
			// success:false with a 2xx status: OneRoute refused it.
			return Permanent
		}
		return Temporary
	}
	var te *TransportError
	if errors.As(err, &te) {
		if te.Written {
			return Ambiguous
		}
		return Temporary
	}
	if errors.Is(err, ErrInvalidRequest) {
		return Permanent
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Temporary
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) {
		return Temporary
	}
	return Permanent
}

// gatewayStatus reports the statuses a proxy or load balancer answers in
// place of the server behind it (502 Bad Gateway, 503 Service Unavailable,
// 504 Gateway Timeout). None proves the request was refused: the upstream
// may have processed it before the gateway gave up on its answer.
func gatewayStatus(st int) bool {
	return st == http.StatusBadGateway || st == http.StatusServiceUnavailable || st == http.StatusGatewayTimeout
}

// IsTemplateRejected reports an error that says the WhatsApp template itself
// is unusable (unknown, not approved, paused): every further send of the
// campaign would fail too. It is errors.Is(err, ErrTemplateRejected).
func IsTemplateRejected(err error) bool {
	return errors.Is(err, ErrTemplateRejected)
}

func templateRejected(m string) bool {
	return strings.Contains(m, "template") && (strings.Contains(m, "not found") || strings.Contains(m, "not approved") ||
		strings.Contains(m, "paused") || strings.Contains(m, "disabled") || strings.Contains(m, "rejected") || strings.Contains(m, "does not exist"))
}

// RetryAfter returns the server's Retry-After carried by err, or 0.
func RetryAfter(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	return 0
}
