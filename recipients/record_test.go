package recipients

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// bigCell is a quoted cell's content of about size bytes on lines of 64
// bytes ended by eol, holding escaped quotes and delimiters.
func bigCell(size int, eol string) string {
	line := `a "" b, c` + strings.Repeat("y", 64-len(eol)-len(`a "" b, c`)) + eol
	return strings.Repeat(line, size/64)
}

// sizeMsg is the refusal of a record over the cap.
func sizeMsg(first, last, size, max int) string {
	return (&recordSizeError{Size: int64(size), Max: int64(max), First: first, Last: last}).Error()
}

// A record over MaxLine is refused on its own, with its size and lines, and
// reading goes on: the rows before and after it keep their numbers and the
// lines they are on in the file, however many lines the refused record
// spans. Within the cap nothing changes.
func TestCSVSourceRecordOverTheCap(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	long := "0802," + strings.Repeat("x", 2*mib-5) // 2 MiB on one line
	cell := bigCell(2*mib, "\n")                   // 2 MiB on 32,768 lines
	cellCRLF := bigCell(2*mib, "\r\n")
	cellLines := strings.Count(cell, "\n")
	for _, tc := range []struct {
		name string
		data string
		opts SourceOptions
		want []gotRow
	}{
		{"a 2 MiB line between good rows", "phone,name\n0801,A\n" + long + "\n0803,C\n0804,D\n", SourceOptions{},
			[]gotRow{{1, 2, "0801", ""}, {2, 3, "", sizeMsg(3, 3, 2*mib, mib)}, {3, 4, "0803", ""}, {4, 5, "0804", ""}}},
		{"a 2 MiB line, CRLF", "phone,name\r\n0801,A\r\n" + long + "\r\n0803,C\r\n", SourceOptions{},
			[]gotRow{{1, 2, "0801", ""}, {2, 3, "", sizeMsg(3, 3, 2*mib, mib)}, {3, 4, "0803", ""}}},
		{"a 2 MiB quoted cell on many lines", "phone,name\n0801,A\n0802,\"" + cell + "\"\n0803,C\n0804,\"D\nE\"\n0805,F\n", SourceOptions{},
			[]gotRow{{1, 2, "0801", ""}, {2, 3, "", sizeMsg(3, 3+cellLines, len(cell)+7, mib)},
				{3, 4 + cellLines, "0803", ""}, {4, 5 + cellLines, "0804", ""}, {5, 7 + cellLines, "0805", ""}}},
		{"a 2 MiB quoted cell on many lines, CRLF", "phone,name\r\n0801,A\r\n0802,\"" + cellCRLF + "\"\r\n0803,C\r\n", SourceOptions{},
			[]gotRow{{1, 2, "0801", ""}, {2, 3, "", sizeMsg(3, 3+cellLines, len(cellCRLF)+7, mib)}, {3, 4 + cellLines, "0803", ""}}},
		{"two in a row, then a malformed row", "phone,name\n0801,\"" + cell + "\"\n" + long + "\n0803,\"C\"x\n0804,D\n", SourceOptions{},
			[]gotRow{{1, 2, "", sizeMsg(2, 2+cellLines, len(cell)+7, mib)}, {2, 3 + cellLines, "", sizeMsg(3+cellLines, 3+cellLines, 2*mib, mib)},
				{3, 4 + cellLines, "", "malformed CSV"}, {4, 5 + cellLines, "0804", ""}}},
		{"the last record, without a line end", "phone,name\n0801,A\n" + long, SourceOptions{},
			[]gotRow{{1, 2, "0801", ""}, {2, 3, "", sizeMsg(3, 3, 2*mib, mib)}}},
		{"a quote that never closes", "phone,name\n0801,A\n0802,\"" + cell, SourceOptions{},
			[]gotRow{{1, 2, "0801", ""}, {2, 3, "", "a quote opens on line 3 and never closes; the rest of the file cannot be read"}}},
		{"a quote that never closes, opened on the record's second line", "phone,name\n0801,A\n0802,\"B\nb\",\"" + cell, SourceOptions{},
			[]gotRow{{1, 2, "0801", ""}, {2, 3, "", "a quote opens on line 4 and never closes"}}},
		{"a quote closed wrongly lines later", "phone,name\n0801,\"" + cell + "\"x\n0803,C\n", SourceOptions{},
			[]gotRow{{1, 2, "", fmt.Sprintf("a quote opens on line 2 and is not closed properly before line %d, swallowing the lines between", 2+cellLines)},
				{2, 3 + cellLines, "0803", ""}}},
		{"records at the cap pass, one byte more does not", "phone,name\n0801,ABCDE\n0802,ABCDEF\r\n0803,ABCDE\r\n\n0804,\"A\nC\"\n0805,\"\"\"B\"\r\n0806,\"AB\r\nCD\"\n0807,A\n",
			SourceOptions{MaxLine: 10},
			[]gotRow{{1, 2, "0801", ""}, {2, 3, "", sizeMsg(3, 3, 11, 10)}, {3, 4, "0803", ""}, {4, 6, "0804", ""},
				{5, 8, "0805", ""}, {6, 9, "", sizeMsg(9, 10, 13, 10)}, {7, 11, "0807", ""}}},
		{"a multi-byte delimiter", "phone；name\n0801；\"A；B\"\n0802；\"" + cell + "\"\n0803；\"C\"\n", SourceOptions{Comma: '；'},
			[]gotRow{{1, 2, "0801", ""}, {2, 3, "", sizeMsg(3, 3+cellLines, len(cell)+9, mib)}, {3, 4 + cellLines, "0803", ""}}},
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

// Prescan refuses a file only for a record it cannot read past: a record
// over the cap is one refused row, a quote that never closes refuses the
// file, naming its line.
func TestPrescanRecordOverTheCap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, data string
		rows       int
		err        string
	}{
		{"over the cap", "phone\n0801\n" + strings.Repeat("9", 100) + "\n0803\n", 3, ""},
		{"never closes", "phone\n0801\n\"" + strings.Repeat("9\n", 100), 2, "r.csv:3: a quote opens on line 3 and never closes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, err := NewSource(strings.NewReader(tc.data), SourceOptions{MaxLine: 50})
			if err != nil {
				t.Fatal(err)
			}
			rows, err := Prescan(src, "r.csv", []string{"phone"})
			if rows != tc.rows || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Prescan = %d, %v; want %d, %q", rows, err, tc.rows, tc.err)
			}
		})
	}
}

// A header over the cap refuses the file as unreadable, without echoing
// what it holds.
func TestCSVSourceHeaderOverTheCap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, data, want string }{
		{"one line", "phone,SECRET" + strings.Repeat("x", 100) + "\n0801,A\n", "the header row is 112 bytes, over the 50-byte cap"},
		{"after blank lines, CRLF", "\r\n\r\nphone,SECRET" + strings.Repeat("x", 100) + "\r\n0801,A\r\n", "the header row is 112 bytes, over the 50-byte cap"},
		{"a quote that never closes", "phone,\"SECRET\n" + strings.Repeat("0801,A\n", 20), "header row: a quote opens on line 1 and never closes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewSource(strings.NewReader(tc.data), SourceOptions{MaxLine: 50})
			if !errors.Is(err, ErrSourceFormat) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("NewSource: %v; want ErrSourceFormat with %q, without the header's content", err, tc.want)
			}
		})
	}
}

// A JSON array element over the cap is refused on its own, whatever it
// holds (strings with brackets and escaped quotes, nesting), and reading
// goes on with the next element; broken JSON still stops the file.
func TestJSONSourceElementOverTheCap(t *testing.T) {
	t.Parallel()
	str := `"` + strings.Repeat(`a\"b]}{[\\`, 30) + `"` // 302 bytes
	nested := strings.Repeat(`[{"a": [`, 20) + str + strings.Repeat(`]}]`, 20)
	object := `{"phone": "0802", "note": ` + str + `}`
	open := `{"note": ` + str
	for _, tc := range []struct {
		name, data string
		want       []gotRow
	}{
		{"an object with a long string", `[{"phone": "0801"}, ` + object + `,` + "\n" + `{"phone": "0803"}]`,
			[]gotRow{{1, 1, "0801", ""}, {2, 2, "", sizeMsg(0, 0, len(object), 200)}, {3, 3, "0803", ""}}},
		{"nested arrays and objects", `[{"phone": "0801"}, ` + nested + ` , {"phone": "0803"}]`,
			[]gotRow{{1, 1, "0801", ""}, {2, 2, "", sizeMsg(0, 0, len(nested), 200)}, {3, 3, "0803", ""}}},
		{"a long string, a long number", `[` + str + `,` + strings.Repeat("1", 300) + `,{"phone": "0803"}]`,
			[]gotRow{{1, 1, "", sizeMsg(0, 0, len(str), 200)}, {2, 2, "", sizeMsg(0, 0, 300, 200)}, {3, 3, "0803", ""}}},
		{"the file ends inside it", `[{"phone": "0801"}, ` + open,
			[]gotRow{{1, 1, "0801", ""}, {2, 2, "", fmt.Sprintf("invalid JSON in element 2: the file ends inside it, after %d bytes", len(open))}}},
		{"no comma", `[{"phone": "0801"} {"phone": "0802"}]`,
			[]gotRow{{1, 1, "0801", ""}, {2, 2, "", "invalid JSON in element 2: invalid character '{' after array element"}}},
		{"a comma before ]", `[{"phone": "0801"},]`,
			[]gotRow{{1, 1, "0801", ""}, {2, 2, "", "invalid JSON in element 2: invalid character ']'"}}},
		{"broken inside an element", `[{"phone": "0801"}, {"phone" "0802"}, {"phone": "0803"}]`,
			[]gotRow{{1, 1, "0801", ""}, {2, 2, "", "invalid JSON in element 2: invalid character"}}},
		{"no closing ]", `[{"phone": "0801"}, {"phone": "0802"}` + "\n",
			[]gotRow{{1, 1, "0801", ""}, {2, 2, "0802", ""}, {3, 3, "", "invalid JSON in element 3: the file ends before the array's closing ]"}}},
		{"empty", ` [ ] `, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, err := NewSource(strings.NewReader(tc.data), SourceOptions{MaxLine: 200})
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, tc.want, readAll(t, src, "phone"))
		})
	}
}

// NDJSON measures a line as CSV does, its line end not counted.
func TestNDJSONSourceLineAtTheCap(t *testing.T) {
	t.Parallel()
	at := `{"phone": "` + strings.Repeat("1", 18) + `"}`
	data := at + "\r\n" + at + "9\n" + at + "\n" + at + "9"
	src, err := NewSource(strings.NewReader(data), SourceOptions{Format: "ndjson", MaxLine: len(at)})
	if err != nil {
		t.Fatal(err)
	}
	phone := strings.Repeat("1", 18)
	want := []gotRow{{1, 1, phone, ""}, {2, 2, "", sizeMsg(0, 0, len(at)+1, len(at))}, {3, 3, phone, ""}, {4, 4, "", sizeMsg(0, 0, len(at)+1, len(at))}}
	checkRows(t, want, readAll(t, src, "phone"))
}

// Sizes in messages are grouped by thousands, as people read them.
func TestGroupDigits(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1048576: "1,048,576", -12345: "-12,345"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
}

// repeatReader reads pattern n times without holding more than it.
type repeatReader struct {
	pattern []byte
	n, off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	total := 0
	for len(p) > 0 && r.n > 0 {
		c := copy(p, r.pattern[r.off:])
		p, total, r.off = p[c:], total+c, r.off+c
		if r.off == len(r.pattern) {
			r.off, r.n = 0, r.n-1
		}
	}
	return total, nil
}

// Reading past a record of 50 MiB allocates about the cap, not the record:
// a file with one huge record cannot exhaust memory. Not parallel: it
// counts the whole process's allocations.
func TestSourceMemoryBoundedByTheCap(t *testing.T) {
	const (
		maxLine = 1 << 20
		size    = 50 << 20
		bound   = maxLine + 10<<20
	)
	for _, tc := range []struct {
		name, format, head, pattern, tail string
		want                              []gotRow
	}{
		{"csv line", "csv", "phone\n0801\n", "0123456789abcdef", "\n0803\n",
			[]gotRow{{1, 2, "0801", ""}, {2, 3, "", "record is 52,428,800 bytes"}, {3, 4, "0803", ""}}},
		{"csv quoted lines", "csv", "phone\n0801\n\"", "0123456789\"\"cd\r\n", "\"\n0803\n",
			[]gotRow{{1, 2, "0801", ""}, {2, 3, "", "record on lines 3-3276803 is 52,428,802 bytes"}, {3, 3276804, "0803", ""}}},
		{"json element", "json", `[{"phone": "0801"}, {"note": "`, `0123456789\"\\[{`, `"}, {"phone": "0803"}]`,
			[]gotRow{{1, 1, "0801", ""}, {2, 2, "", "record is 52,428,812 bytes"}, {3, 3, "0803", ""}}},
		{"ndjson line", "ndjson", `{"phone": "0801"}` + "\n", "0123456789abcdef", "\n" + `{"phone": "0803"}`,
			[]gotRow{{1, 1, "0801", ""}, {2, 2, "", "record is 52,428,800 bytes"}, {3, 3, "0803", ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := io.MultiReader(strings.NewReader(tc.head), &repeatReader{pattern: []byte(tc.pattern), n: size / len(tc.pattern)}, strings.NewReader(tc.tail))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			src, err := NewSource(r, SourceOptions{Format: tc.format, MaxLine: maxLine})
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, src, "phone")
			runtime.ReadMemStats(&after)
			checkRows(t, tc.want, got)
			n := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %d bytes reading a %d-byte record", n, size)
			if n > bound {
				t.Errorf("reading a %d-byte record allocated %d bytes, want at most %d", size, n, bound)
			}
		})
	}
}
