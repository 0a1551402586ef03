package recipients

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fanoutdev/fanout/campaigns"
)

// CheckColumns reports template fields that a source's header lacks. It names
// the spec line that refers to them and the columns the file has.
func CheckColumns(s campaigns.Spec, r *campaigns.Renderer, file string, columns []string) error {
	var missing []string
	for _, f := range r.Fields() {
		if !slices.Contains(columns, f) {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	key := "message"
	if s.Channel == campaigns.ChannelWhatsAppTemplate || s.Channel == campaigns.ChannelWhatsAppCampaign {
		key = "template"
	}
	if s.Channel == campaigns.ChannelPush {
		key = pushKey(s, missing[0])
	}
	if hint := delimiterHint(columns); hint != "" {
		return s.Errorf("recipients", "%s has one column, %s: %s", file, ColumnsText(columns), hint)
	}
	return s.Errorf(key, "the template refers to column %s, which %s does not have (%s); fix the spelling or add the column",
		quoteList(missing), file, ColumnsText(columns))
}

// ColumnsText lists a recipient file's header columns for an error, as
// "its columns: a, b". A header that does not look like column names (the
// file is probably not a recipient file: fanout was pointed at /etc/shadow)
// is not repeated, so no error leaks a file's content.
func ColumnsText(columns []string) string {
	for _, c := range columns {
		if !plainColumn(c) {
			return "its first line does not look like a header of column names, so it is not shown; is it a recipient file? A CSV recipient file starts with a header such as \"phone,first_name\""
		}
	}
	if len(columns) == 1 {
		return fmt.Sprintf("its one column: %q", columns[0])
	}
	return "its columns: " + strings.Join(columns, ", ")
}

// plainColumn reports a plausible column name: short, of letters, digits,
// spaces and the punctuation spreadsheets use in headers (a delimiter
// mistake may join several with ';', '|' or a tab).
func plainColumn(c string) bool {
	if c == "" || utf8.RuneCountInString(c) > 200 {
		return false
	}
	for _, r := range c {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || (unicode.IsSymbol(r) && r != '$') ||
			strings.ContainsRune(" _-.()#%&'/?;|\t", r)) {
			return false
		}
	}
	return true
}

// delimiterHint explains a header read as one column because the file uses
// another delimiter (Excel writes ';' in many locales).
func delimiterHint(columns []string) string {
	if len(columns) != 1 {
		return ""
	}
	for _, d := range []struct{ c, name string }{{";", `";"`}, {"\t", `tab`}, {"|", `"|"`}} {
		if strings.Contains(columns[0], d.c) {
			return fmt.Sprintf("it looks %s-separated: add `delimiter: %s` to the spec (or pass --delimiter)", d.name, d.name)
		}
	}
	return ""
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// pushKey is the push spec key whose template names field f: title, message
// or url, as far as its text shows ("message" when none does).
func pushKey(s campaigns.Spec, f string) string {
	for _, k := range []struct{ key, text string }{{"title", s.Title}, {"message", s.Message}, {"url", s.URL}} {
		if strings.Contains(k.text, "."+f) || strings.Contains(k.text, `"`+f+`"`) {
			return k.key
		}
	}
	return "message"
}
