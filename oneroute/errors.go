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

// APIError is an answer from OneRoute that is not a success.
type APIError struct {
	Op      string // the client method, e.g. "send sms"
	Status  int    // HTTP status
	Message string // OneRoute's message, e.g. "\"template\" is required"
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration

	oversize  bool
	malformed bool
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("oneroute %s: HTTP %d: %s", e.Op, e.Status, e.Message)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// TransportError is a failure to get an answer at all. Written says whether
// the request had been fully written before it failed: if so, OneRoute may
// have accepted the message.
type TransportError struct {
	Op      string
	Written bool
	Err     error
}

func (e *TransportError) Error() string {
	when := "before the request was sent"
	if e.Written {
		when = "after the request was sent (the message may have been accepted)"
	}
	return fmt.Sprintf("oneroute %s: %v, %s", e.Op, e.Err, when)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Class sorts an error by what the caller should do next.
type Class int

// Error classes.
const (
	// OK: no error.
	OK Class = iota
	// Permanent: the request is wrong for good (validation, 404, invalid
	// number); do not retry it.
	Permanent
	// Unauthorized: the API key was refused; every request will fail until
	// an operator fixes the key.
	Unauthorized
	// Throttled: the server asked to slow down (429); retry after
	// APIError.RetryAfter, it is not a failure.
	Throttled
	// Temporary: the request certainly did not take effect (5xx, connection
	// refused before the request was written); retry with backoff.
	Temporary
	// Ambiguous: the request was written and then the answer was lost
	// (timeout, connection reset): the message may have been accepted.
	// Reconcile before any resend.
	Ambiguous
)

var classNames = [...]string{"ok", "permanent", "unauthorized", "throttled", "temporary", "ambiguous"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Classify says what kind of failure err is. It is the one place that maps
// OneRoute's answers and transport failures to decisions.
func Classify(err error) Class {
	if err == nil {
		return OK
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
			return Unauthorized
		case ae.Status == http.StatusTooManyRequests:
			return Throttled
		case ae.Status >= 500:
			return Temporary
		case ae.malformed && ae.Status < 300:
			// A 2xx we cannot read: the message was probably accepted.
			return Ambiguous
		case ae.oversize:
			if ae.Status < 300 {
				return Ambiguous
			}
			return Temporary
		case ae.Status == http.StatusRequestTimeout:
			return Temporary
		case ae.Status >= 400:
			return Permanent
		case ae.Status < 300:
			// success:false with a 2xx status: OneRoute refused it.
			return Permanent
		}
		return Temporary
	}
	var te *TransportError
	if errors.As(err, &te) {
		if !te.Written {
			return Temporary
		}
		return Ambiguous
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

// IsTemplateRejected reports an error that says the WhatsApp template itself
// is unusable (unknown, not approved, paused): every further send of the
// campaign would fail too.
func IsTemplateRejected(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status < 400 || ae.Status >= 500 {
		return false
	}
	m := strings.ToLower(ae.Message)
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
