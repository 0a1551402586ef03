package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
)

// Every cell a spreadsheet would run as a formula (= + - @ tab CR) is
// prefixed with ' in CSV, and comes back as written in NDJSON; a reason
// with commas, quotes and a newline stays one cell.
func TestReportWriterEscapesFormulas(t *testing.T) {
	t.Parallel()
	reasons := []string{"=1+2", "+cmd", "-2", "@SUM(A1)", "\tx", "\rx", "a, \"b\"\nc", "plain"}
	var buf bytes.Buffer
	w := newReportWriter(&buf, "csv")
	for i, r := range reasons {
		if err := w.write(reportLine{Row: i + 1, To: "=evil@x.io", State: "failed", Reason: r}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(reasons)+1 {
		t.Fatalf("%d records, want %d", len(recs), len(reasons)+1)
	}
	for i, r := range reasons {
		got, want := recs[i+1][4], r
		if strings.ContainsAny(r[:1], "=+-@\t\r") {
			want = "'" + r
		}
		if got != want {
			t.Errorf("reason %q written as %q, want %q", r, got, want)
		}
		if recs[i+1][1] != "'=evil@x.io" {
			t.Errorf("address written as %q", recs[i+1][1])
		}
	}
	buf.Reset()
	w = newReportWriter(&buf, "ndjson")
	if err := w.write(reportLine{Row: 1, Reason: "=1+2"}); err != nil {
		t.Fatal(err)
	}
	var l reportLine
	if err := json.Unmarshal(buf.Bytes(), &l); err != nil || l.Reason != "=1+2" {
		t.Errorf("ndjson = %q (%v), want the reason as is", buf.String(), err)
	}
}
