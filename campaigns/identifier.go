package campaigns

import (
	"strconv"
	"strings"
)

// identifierPrefix starts every identifier fanout gives a message.
const identifierPrefix = "fanout:"

// Identifier is the deterministic message identifier of a campaign's row,
// "fanout:<campaign id>:<row>". It travels with the message (OneRoute's
// identifier and metadata fields), comes back in status webhooks and the
// Logs API, and finds the row without any index: every attempt of the row
// carries the same identifier, so a lookup by it settles a resend's doubt.
// Campaign ids never contain ':' (see the spec's id rule), so the last ':'
// splits.
func Identifier(campaign string, row int) string {
	return identifierPrefix + campaign + ":" + strconv.Itoa(row)
}

// ParseIdentifier reverses Identifier. ok is false for an identifier
// fanout did not make.
func ParseIdentifier(s string) (campaign string, row int, ok bool) {
	rest, found := strings.CutPrefix(s, identifierPrefix)
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return "", 0, false
	}
	row, err := strconv.Atoi(rest[i+1:])
	if err != nil || row < 0 || !idPattern.MatchString(rest[:i]) {
		return "", 0, false
	}
	return rest[:i], row, true
}
