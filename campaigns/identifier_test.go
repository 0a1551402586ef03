package campaigns

import "testing"

func TestIdentifierRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		id  string
		row int
	}{{"c-20261202-183000-ab12cd", 0}, {"spring.sale_2", 123456}, {"x", 7}} {
		s := Identifier(tc.id, tc.row)
		id, row, ok := ParseIdentifier(s)
		if !ok || id != tc.id || row != tc.row {
			t.Errorf("ParseIdentifier(%q) = %q, %d, %v; want %q, %d, true", s, id, row, ok, tc.id, tc.row)
		}
	}
	for _, bad := range []string{"", "fanout:", "fanout:abc", "fanout::1", "fanout:abc:", "fanout:abc:-1", "fanout:abc:x", "other:abc:1", "fanout:a/b:1", "gBGHI0kFNWAgTwIJk"} {
		if id, row, ok := ParseIdentifier(bad); ok {
			t.Errorf("ParseIdentifier(%q) = %q, %d, true; want false", bad, id, row)
		}
	}
}
