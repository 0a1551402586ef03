package recipients

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/google/go-cmp/cmp"
)

// gotRow is what a test compares of a Row.
type gotRow struct {
	N, Line int
	Phone   string
	Err     string // a part of the error, "" when none
}

func readAll(t *testing.T, src Source, field string) []gotRow {
	t.Helper()
	var out []gotRow
	for i := 0; i < 10000; i++ {
		row, err := src.Next()
		if row.N > 0 {
			g := gotRow{N: row.N, Line: row.Line, Phone: row.Fields[field]}
			if row.Err != nil {
				g.Err = row.Err.Error()
			}
			out = append(out, g)
		}
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
	}
	t.Fatal("source never ended")
	return nil
}

// checkRows compares rows, matching Err as a substring.
func checkRows(t *testing.T, want, got []gotRow) {
	t.Helper()
	if len(want) == len(got) {
		for i := range want {
			if want[i].Err != "" && strings.Contains(got[i].Err, want[i].Err) {
				got[i].Err = want[i].Err
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

// MessyCSV is a spreadsheet export with everything that goes wrong in one
// file: a BOM, CRLF and LF line ends, quoted commas and newlines, mixed phone
// formats, blank lines, invalid UTF-8, a short row and a truncated last line.
const MessyCSV = "\xEF\xBB\xBFphone,name,note\r\n" +
	"08031234567,Ada,\"likes, commas\"\r\n" + // row 1, line 2
	"\r\n" + // blank
	"+2348031234568,\"Bayo\r\nOn two lines\",x\r\n" + // row 2, lines 4-5
	"2348031234567,Ada again,x\r\n" + // row 3, line 6: Ada written another way
	"0803 123 4569,Chidi,x\n" + // row 4, line 7: LF only
	"12345,Short,x\n" + // row 5, line 8: not a phone number
	"08031234570,Bad\xff\xfeName,x\n" + // row 6, line 9: invalid UTF-8
	"\n" + // blank
	"08031234571,Efe\n" + // row 7, line 11: a field short
	"08031234572,\"Unclosed,x" // row 8, line 12: truncated in a quote

// Every row of the messy file is read or refused on its own, with the right
// record number, line and reason; nothing stops the file early.
func TestCSVSourceMessyFile(t *testing.T) {
	t.Parallel()
	src, err := NewSource(strings.NewReader(MessyCSV), SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"phone", "name", "note"}, src.Columns()); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	want := []gotRow{
		{1, 2, "08031234567", ""},
		{2, 4, "+2348031234568", ""},
		{3, 6, "2348031234567", ""},
		{4, 7, "0803 123 4569", ""},
		{5, 8, "12345", ""},
		{6, 9, "08031234570", "not valid UTF-8"},
		{7, 11, "08031234571", "has 2 fields, the header has 3"},
		{8, 12, "", "malformed CSV"},
	}
	checkRows(t, want, readAll(t, src, "phone"))
}

func TestCSVSourceOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		data string
		opts SourceOptions
		want []gotRow
	}{
		{"semicolon", "phone;name\n0803;A\n", SourceOptions{Comma: ';'}, []gotRow{{1, 2, "0803", ""}}},
		{"tab", "phone\tname\n0803\tA\n", SourceOptions{Comma: '\t'}, []gotRow{{1, 2, "0803", ""}}},
		{"field over the cap", "phone,name\n0803," + strings.Repeat("x", 100) + "\n0804,B\n", SourceOptions{MaxField: 50},
			[]gotRow{{1, 2, "0803", "over the 50-byte cap"}, {2, 3, "0804", ""}}},
		{"unclosed quote in a big file stops it, naming the line", "phone,name\n0803,\"open\n" + strings.Repeat("0804,line\n", 20000),
			SourceOptions{MaxLine: 1000}, []gotRow{{1, 2, "", "a quote opens on line 2 and never closes"}}},
		{"no newline at the end", "phone,name\n0803,A", SourceOptions{}, []gotRow{{1, 2, "0803", ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, err := NewSource(strings.NewReader(tc.data), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, tc.want, readAll(t, src, "phone"))
		})
	}
}

// Files that cannot be read at all are refused before anything is sent,
// saying how to fix them.
func TestSourceRefusesUnreadableFiles(t *testing.T) {
	t.Parallel()
	for name, data := range map[string]string{
		"utf-16":           "\xFF\xFEp\x00h\x00",
		"empty":            "",
		"duplicate column": "phone,phone\n1,2\n",
		"empty column":     "phone,,name\n",
		"json not array":   `{"phone": 1}` + "x",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opts := SourceOptions{}
			if name == "json not array" {
				opts.Format = "json"
			}
			_, err := NewSource(strings.NewReader(data), opts)
			if !errors.Is(err, ErrSourceFormat) {
				t.Errorf("NewSource: %v, want ErrSourceFormat", err)
			}
		})
	}
}

// A JSON array is streamed element by element: a bad element is refused and
// the rest read, until the JSON itself breaks.
func TestJSONSource(t *testing.T) {
	t.Parallel()
	data := "\n [" +
		`{"phone": "08031234567", "name": "Ada"},` +
		`{"phone": 2348031234568},` +
		`{"phone": "0803", "nested": {"a": 1}},` +
		`"not an object",` +
		"{\"phone\": \"08031234569\", \"name\": \"\xff\"}," +
		`{"phone": "08031234570"}` +
		"]"
	src, err := NewSource(strings.NewReader(data), SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if src.Columns() != nil {
		t.Errorf("columns %v, want nil for JSON", src.Columns())
	}
	want := []gotRow{
		{1, 1, "08031234567", ""},
		{2, 2, "2348031234568", ""},
		{3, 3, "0803", "object or array"},
		{4, 4, "", "not a JSON object"},
		{5, 5, "", "not valid UTF-8"},
		{6, 6, "08031234570", ""},
	}
	checkRows(t, want, readAll(t, src, "phone"))
}

// NDJSON: blank lines are skipped, an over-long line is refused and reading
// goes on at the next line, a truncated last line is refused.
func TestNDJSONSource(t *testing.T) {
	t.Parallel()
	data := `{"phone": "08031234567"}` + "\r\n" +
		"\n" +
		`{"phone": "` + strings.Repeat("9", 300) + `"}` + "\n" +
		`{"phone": "08031234568"}` + "\n" +
		`{"phone": "0803`
	src, err := NewSource(strings.NewReader(data), SourceOptions{MaxLine: 200})
	if err != nil {
		t.Fatal(err)
	}
	want := []gotRow{
		{1, 1, "08031234567", ""},
		{2, 3, "", "record is 313 bytes, over the 200-byte cap"},
		{3, 4, "08031234568", ""},
		{4, 5, "", "not a JSON object"},
	}
	checkRows(t, want, readAll(t, src, "phone"))
}

func TestParseDelimiter(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]rune{"": 0, ",": ',', ";": ';', "|": '|', "tab": '\t', `\t`: '\t'} {
		got, err := campaigns.ParseDelimiter(in)
		if err != nil || got != want {
			t.Errorf("campaigns.ParseDelimiter(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`"`, "ab", "\n", "x", "1"} {
		if _, err := campaigns.ParseDelimiter(bad); err == nil {
			t.Errorf("campaigns.ParseDelimiter(%q) accepted", bad)
		}
	}
}

// A spec's format and delimiter keys are checked at load, with the line.
func TestSpecFormatAndDelimiter(t *testing.T) {
	t.Parallel()
	base := "channel: sms\nchannel_id: c\nmessage: hi\nrecipients: r.csv\n"
	s, err := campaigns.ParseSpec("c.yaml", []byte(base+"delimiter: \";\"\nformat: csv\n"))
	if err != nil {
		t.Fatal(err)
	}
	if o := OptionsOf(s); o.Comma != ';' || o.Format != "csv" {
		t.Errorf("SourceOptions = %+v", o)
	}
	_, err = campaigns.ParseSpec("c.yaml", []byte(base+"delimiter: ab\nformat: xml\n"))
	for _, want := range []string{"c.yaml:5: delimiter", "c.yaml:6: format \"xml\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func ExampleNewSource() {
	src, _ := NewSource(strings.NewReader("phone;name\n0803 123 4567;Ada\n"), SourceOptions{Comma: ';'})
	row, _ := src.Next()
	phone, _ := NewPhoneNormalizer("NG").Normalize(row.Fields["phone"])
	fmt.Println(row.N, row.Line, row.Fields["name"], phone)
	// Output: 1 2 Ada +2348031234567
}
