package recipients

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/nyaruka/phonenumbers"
)

// ErrInvalidAddress marks a recipient address that cannot be messaged.
var ErrInvalidAddress = errors.New("invalid address")

// NormalizePhone returns a phone number in E.164 form ("+2348031234567").
// Numbers without a country code are read in region (ISO 3166, e.g. "NG"):
// "0803 123 4567", "2348031234567" and "+234 803 123 4567" are one number.
func NormalizePhone(raw, region string) (string, error) {
	s := cleanPhone(raw)
	if s == "" {
		return "", fmt.Errorf("%w: empty phone number", ErrInvalidAddress)
	}
	num, err := phonenumbers.Parse(s, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		// "2348031234567" without '+': try it as international.
		if !strings.HasPrefix(s, "+") {
			if n2, err2 := phonenumbers.Parse("+"+s, region); err2 == nil && phonenumbers.IsValidNumber(n2) {
				return phonenumbers.Format(n2, phonenumbers.E164), nil
			}
		}
		return "", fmt.Errorf("%w: %q is not a valid phone number for region %s", ErrInvalidAddress, raw, region)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// cleanPhone drops spaces (including NBSP), zero-width characters, dashes,
// dots and brackets, and folds full-width digits.
func cleanPhone(raw string) string {
	var b strings.Builder
	b.Grow(len(raw))
	for _, r := range raw {
		switch {
		case r >= '0' && r <= '9', r == '+':
			b.WriteRune(r)
		case r >= '０' && r <= '９':
			b.WriteRune('0' + (r - '０'))
		case r == '＋':
			b.WriteRune('+')
		case unicode.IsSpace(r), r == '\u200b', r == '\u200c', r == '\u200d', r == '\ufeff',
			r == '-', r == '.', r == '(', r == ')', r == '/':
		default:
			b.WriteRune(r) // left in so the parser rejects it
		}
	}
	return b.String()
}

// NormalizeEmail returns a lower-cased bare address ("ada@example.com").
func NormalizeEmail(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("%w: empty email address", ErrInvalidAddress)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || strings.ContainsAny(a.Address, " <>") {
		return "", fmt.Errorf("%w: %q is not a valid email address", ErrInvalidAddress, raw)
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at < 1 || !strings.Contains(a.Address[at:], ".") {
		return "", fmt.Errorf("%w: %q is not a valid email address", ErrInvalidAddress, raw)
	}
	return strings.ToLower(a.Address), nil
}

// Normalize returns the canonical address of a recipient for a channel.
func Normalize(s campaigns.Spec, raw string) (string, error) {
	if s.Channel == campaigns.ChannelPush {
		return NormalizeCustomer(raw)
	}
	if s.Channel.AddressKind() == "email" {
		return NormalizeEmail(raw)
	}
	return NormalizePhone(raw, s.DefaultRegion)
}

// AddressField picks the field that holds the address: the spec's `to`, else
// "phone" (or "email"), else "to". columns may be nil (JSON sources).
func AddressField(s campaigns.Spec, columns []string) (string, error) {
	if s.To != "" {
		if columns != nil && !contains(columns, s.To) {
			return "", s.Errorf("to", "to: %q is not a column of the recipients file (%s)", s.To, ColumnsText(columns))
		}
		return s.To, nil
	}
	candidates := []string{"phone", "phone_number", "msisdn", "mobile", "to"}
	if s.Channel.AddressKind() == "email" {
		candidates = []string{"email", "email_address", "to"}
	}
	if s.Channel == campaigns.ChannelPush {
		candidates = campaigns.PushColumns
	}
	if columns == nil {
		return candidates[0], nil
	}
	for _, c := range candidates {
		for _, col := range columns {
			if strings.EqualFold(col, c) {
				return col, nil
			}
		}
	}
	if hint := delimiterHint(columns); hint != "" {
		return "", s.Errorf("recipients", "the recipients file has one column, %s: %s", ColumnsText(columns), hint)
	}
	return "", s.Errorf("recipients", "the recipients file has no %s column (looked for %s; %s); name the column with the spec key `to`",
		s.Channel.AddressKind(), strings.Join(candidates, ", "), ColumnsText(columns))
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// EscapeCell makes a value safe to open in a spreadsheet: a cell starting
// with = + - @ tab, CR or NUL is prefixed with ' so it is not run as a
// formula (OWASP CSV injection).
func EscapeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r', 0:
		return "'" + s
	}
	return s
}

// MaxCustomerIDLen caps a push recipient's customer id.
const MaxCustomerIDLen = 256

// NormalizeCustomer returns the key of a push recipient: a value holding an
// '@' is an email address (NormalizeEmail), anything else a customer id,
// trimmed, without spaces or control characters. Either is the recipient's
// ledger and dedupe key.
func NormalizeCustomer(raw string) (string, error) {
	if campaigns.PushByEmail(raw) {
		return NormalizeEmail(raw)
	}
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("%w: empty customer id", ErrInvalidAddress)
	}
	if len(s) > MaxCustomerIDLen {
		return "", fmt.Errorf("%w: a customer id of %d bytes (at most %d)", ErrInvalidAddress, len(s), MaxCustomerIDLen)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", fmt.Errorf("%w: customer id %q holds a space or control character", ErrInvalidAddress, s)
		}
	}
	return s, nil
}
