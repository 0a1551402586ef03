package recipients

import (
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSource reads data in format to the end and checks the source's
// promises: no panic, it ends, record numbers count up by one, and a row
// without an error holds only valid UTF-8 within the field cap.
func fuzzSource(t *testing.T, format, data string) {
	opts := SourceOptions{Format: format, MaxField: 256, MaxLine: 1024}
	src, err := NewSource(strings.NewReader(data), opts)
	if err != nil {
		return
	}
	defer src.Close()
	last := 0
	for i := 0; i <= len(data)+1; i++ {
		row, err := src.Next()
		if row.N > 0 {
			if row.N != last+1 {
				t.Fatalf("record %d after %d", row.N, last)
			}
			last = row.N
			if row.Err == nil {
				for k, v := range row.Fields {
					if !utf8.ValidString(v) || len(v) > opts.MaxField {
						t.Fatalf("row %d field %q = %q passed", row.N, k, v)
					}
				}
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			return
		}
	}
	t.Fatalf("source did not end after %d reads of %d bytes", len(data)+2, len(data))
}

func FuzzCSVSource(f *testing.F) {
	f.Add(MessyCSV)
	f.Add("phone,name\n0803,\"a\nb\"\n\"unclosed\n")
	f.Add("\xEF\xBB\xBFphone;name\r\n0803;x\r\n")
	f.Fuzz(func(t *testing.T, data string) { fuzzSource(t, "csv", data) })
}

func FuzzJSONSource(f *testing.F) {
	f.Add(`[{"phone": "0803", "name": "Ada"}, {"phone": 234}, "x", {"a": {"b": 1}}]`)
	f.Add(`[{"phone": "0803"`)
	f.Fuzz(func(t *testing.T, data string) { fuzzSource(t, "json", data) })
}

func FuzzNDJSONSource(f *testing.F) {
	f.Add("{\"phone\": \"0803\"}\n\n{\"phone\": 1}\r\n{\"phone\"")
	f.Add("[1]\n\"x\"\n{}\n")
	f.Fuzz(func(t *testing.T, data string) { fuzzSource(t, "ndjson", data) })
}

// NormalizePhone never panics, is idempotent, and the fast normaliser
// agrees with it on every input.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"08031234567", "+2348031234567", "2348031234567", "0803 123 4567", "12345", "+447911123456", "009447911123456", "０８０３１２３４５６７", "=1+2", "+"} {
		f.Add(s, "NG")
	}
	f.Add("07911 123456", "GB")
	f.Add("(202) 555-0123", "US")
	f.Fuzz(func(t *testing.T, raw, region string) {
		if len(region) != 2 {
			region = "NG"
		}
		n1, err := NormalizePhone(raw, region)
		fast, ferr := NewPhoneNormalizer(region).Normalize(raw)
		if fast != n1 || (ferr == nil) != (err == nil) {
			t.Fatalf("fast %q, %v; NormalizePhone %q, %v", fast, ferr, n1, err)
		}
		if err != nil {
			return
		}
		n2, err := NormalizePhone(n1, region)
		if err != nil || n2 != n1 {
			t.Fatalf("N(N(%q)) = %q, %v; N(%q) = %q", raw, n2, err, raw, n1)
		}
	})
}
