package recipients

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
)

// chunkReader hands out at most n bytes a read, to move the splitter's
// window edges around.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// splitAll runs data through a recordSplitter with a cap of max bytes (-1:
// every record is over), on a 16-byte window filled chunk bytes at a time.
func splitAll(t *testing.T, data []byte, comma rune, max int64, chunk int) ([]byte, []skippedRecord) {
	t.Helper()
	s := newRecordSplitter(bufio.NewReaderSize(chunkReader{bytes.NewReader(data), chunk}, 16), SourceOptions{Comma: comma})
	s.max = max
	out, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("splitter: %v", err)
	}
	return out, s.skips
}

// blankCSVLine reports a record encoding/csv skips: an empty line, or a
// lone "\r" at the end of the file.
func blankCSVLine(rec []byte, last bool) bool {
	return string(rec) == "\n" || string(rec) == "\r\n" || (last && string(rec) == "\r")
}

var fuzzCommas = []rune{',', ';', '\t', '§', '；', '𝄞'}

// The splitter cuts records exactly where encoding/csv does, marks the
// quotes encoding/csv refuses, and passes on exactly the file with each
// record over the cap replaced by a placeholder. Through csvSource, a row
// within the cap is the same row on the same line with or without records
// over the cap before it.
func FuzzRecordSplitter(f *testing.F) {
	f.Add(MessyCSV, uint8(0), uint8(1), uint8(8))
	f.Add("a,\"b\nc\"\"d\",e\r\n\"f\"\r\r\n\"g\"x\n\"h\n\ni\"j,k\n\"l", uint8(0), uint8(3), uint8(4))
	f.Add("a§\"b§\n\"§c\n\"d\"§\xc2\n\"e\"\xc2\xa7f\n", uint8(3), uint8(1), uint8(2))
	f.Add("a；\"b\"；\"c\n\"\n\"x\"\xef\xbc\n", uint8(4), uint8(2), uint8(6))
	f.Add("phone,name\n0801,A\n0802,\"BBBBBBBBBBBBBBBBBBBBB\nBBBBBBBBBB\"\n0803,C\n0804,\"open\n0805,E\n", uint8(0), uint8(5), uint8(12))
	f.Fuzz(func(t *testing.T, data string, commaSel, chunk, maxLine uint8) {
		comma := fuzzCommas[int(commaSel)%len(fuzzCommas)]
		in := []byte(data)
		n := 1 + int(chunk)%32

		// Every record over the cap: the splitter's records.
		out, recs := splitAll(t, in, comma, -1, n)
		if len(out) != len(recs)*len(placeholder) {
			t.Fatalf("passed on %q with every record over the cap", out)
		}
		lines, prev := 0, int64(0)
		var ends []int64
		for i, r := range recs {
			if r.inEnd <= prev {
				t.Fatalf("record %d ends at %d, after %d", i, r.inEnd, prev)
			}
			if !blankCSVLine(in[prev:r.inEnd], r.inEnd == int64(len(in))) {
				ends = append(ends, r.inEnd)
			}
			lines += r.lines
			prev = r.inEnd
		}
		if prev != int64(len(in)) {
			t.Fatalf("records end at %d of %d bytes", prev, len(in))
		}
		if want := bytes.Count(in, []byte{'\n'}) + min(1, len(in)-bytes.LastIndexByte(in, '\n')-1); lines != want {
			t.Fatalf("records span %d lines, the file has %d", lines, want)
		}

		// encoding/csv's records, and the quotes it refuses.
		cr := csv.NewReader(bytes.NewReader(in))
		cr.Comma, cr.FieldsPerRecord = comma, -1
		var want []int64
		for {
			_, err := cr.Read()
			if err == io.EOF {
				break
			}
			want = append(want, cr.InputOffset())
			var pe *csv.ParseError
			quoteErr := errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrQuote)
			for _, r := range recs {
				if r.inEnd != cr.InputOffset() {
					continue
				}
				if quoteErr != (r.badLine >= 0 || r.unclosed >= 0) || (r.badLine >= 0 && r.badLine != pe.Line-pe.StartLine) {
					t.Fatalf("record ending at %d: csv error %v, splitter marks bad quote on line +%d, unclosed on line +%d", r.inEnd, err, r.badLine, r.unclosed)
				}
			}
		}
		if !slices.Equal(ends, want) {
			t.Fatalf("records end at %v, encoding/csv's at %v", ends, want)
		}

		// A cap: exactly the records over it are replaced.
		max := int64(maxLine % 48)
		var model []byte
		prev = 0
		for _, r := range recs {
			if r.size > max {
				model = append(model, placeholder...)
			} else {
				model = append(model, in[prev:r.inEnd]...)
			}
			prev = r.inEnd
		}
		got, skips := splitAll(t, in, comma, max, n)
		if !bytes.Equal(got, model) {
			t.Fatalf("with a cap of %d passed on\n%q\nwant\n%q", max, got, model)
		}
		for _, sk := range skips {
			if sk.size <= max {
				t.Fatalf("skipped a record of %d bytes with a cap of %d", sk.size, max)
			}
		}
		if got, _ := splitAll(t, in, comma, 1<<30, n); !bytes.Equal(got, in) {
			t.Fatalf("without a cap passed on %q", got)
		}
		isEnd := map[int64]bool{}
		for _, r := range recs {
			isEnd[r.inEnd] = true
		}
		for _, size := range []int{16, 64} {
			checkPassOn(t, in, comma, size, n, isEnd)
		}

		// Rows within the cap keep their line and fields.
		if max == 0 {
			return
		}
		all := csvRowsByLine(t, data, comma, 1<<30)
		for line, fields := range csvRowsByLine(t, data, comma, int(max)) {
			if want, ok := all[line]; !ok || !maps.Equal(fields, want) {
				t.Fatalf("with a cap of %d, line %d holds %v; without, %v", max, line, fields, want)
			}
		}
	})
}

// checkPassOn reads data through a splitter without a cap, on a window of
// size bytes, and checks that it only ever passes on whole records: where
// they stop is a record's end.
func checkPassOn(t *testing.T, data []byte, comma rune, size, chunk int, isEnd map[int64]bool) {
	t.Helper()
	s := newRecordSplitter(bufio.NewReaderSize(chunkReader{bytes.NewReader(data), chunk}, size), SourceOptions{Comma: comma})
	s.max = 1 << 30
	p := make([]byte, 7)
	for {
		_, err := s.Read(p)
		// What is being passed on ends at base+ready.
		if end := s.base + int64(s.ready); end > 0 && !isEnd[end] {
			t.Fatalf("window %d: passes on up to %d, not a record's end", size, end)
		}
		if err != nil {
			return
		}
	}
}

// csvRowsByLine reads data with csvSource and returns the fields of the
// rows without an error, by line.
func csvRowsByLine(t *testing.T, data string, comma rune, maxLine int) map[int]map[string]string {
	t.Helper()
	src, err := NewSource(strings.NewReader(data), SourceOptions{Format: "csv", Comma: comma, MaxLine: maxLine, MaxField: 1 << 30})
	if err != nil {
		return nil
	}
	rows := map[int]map[string]string{}
	for {
		row, err := src.Next()
		if err != nil {
			return rows
		}
		if row.Err == nil {
			rows[row.Line] = maps.Clone(row.Fields)
		}
	}
}
