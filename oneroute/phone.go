package oneroute

import "strings"

// Phone formats a number the way the messaging endpoints expect it
// (WhatsApp, SMS): international digits without '+', e.g. "2348031234567".
// It removes a leading '+' and the usual formatting characters (spaces,
// '-', '.', '(', ')') and leaves anything else in place, so that a number
// with letters is refused by OneRoute rather than sent to someone else.
func Phone(number string) string {
	number = strings.TrimSpace(number)
	number = strings.TrimPrefix(number, "+")
	if !strings.ContainsAny(number, " -.()\u00a0") {
		return number
	}
	var b strings.Builder
	b.Grow(len(number))
	for _, r := range number {
		switch r {
		case ' ', '-', '.', '(', ')', '\u00a0':
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// OTPPhone formats a number the way the OneOTP endpoints show it: a leading
// '+' and international digits, e.g. "+2348031234567". An empty number stays
// empty.
func OTPPhone(number string) string {
	p := Phone(number)
	if p == "" {
		return ""
	}
	return "+" + p
}

func phones(list []string) []string {
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = Phone(p)
	}
	return out
}
