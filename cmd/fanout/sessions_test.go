package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/internal/redistest"
)

// sessions import records the open windows of a CSV export, refuses bad rows
// by line and imports the rest; sessions check reads them back.
func TestSessionsImportAndCheck(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	now := time.Now()
	csvText := fmt.Sprintf("phone,last_inbound_at\n+2348031234567,%s\n08031234568,%d\nnot-a-number,%d\n+2348031234569,%d\n+2348031234570,yesterday\n",
		now.Add(-2*time.Hour).Format(time.RFC3339), now.Add(-time.Hour).Unix(), now.Unix(), now.Add(-30*time.Hour).Unix())
	path := filepath.Join(t.TempDir(), "inbound.csv")
	if err := os.WriteFile(path, []byte(csvText), 0o600); err != nil {
		t.Fatal(err)
	}
	b := setup(t)
	b.env["REDIS_URL"] = srv.URL()
	if code := b.run(t, "sessions", "import", "--from", "+2348090000001", "--json", path); code != exitOK {
		t.Fatalf("import: exit %d, stderr %s", code, b.stderr.String())
	}
	var sum sessionsImported
	if err := json.Unmarshal(b.stdout.Bytes(), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Rows != 5 || sum.Recorded != 2 || sum.Closed != 1 || sum.Invalid != 2 || len(sum.Problems) != 2 ||
		!strings.Contains(sum.Problems[0], "inbound.csv:4:") || !strings.Contains(sum.Problems[1], "inbound.csv:6:") {
		t.Fatalf("summary %+v; want 5 rows, 2 recorded, 1 closed, 2 invalid at lines 4 and 6", sum)
	}

	c := setup(t)
	c.env["REDIS_URL"] = srv.URL()
	if code := c.run(t, "sessions", "check", "--from", "2348090000001", "--json", "+2348031234567", "+2348031234568", "+2348031234569"); code != exitOK {
		t.Fatalf("check: exit %d, stderr %s", code, c.stderr.String())
	}
	dec := json.NewDecoder(strings.NewReader(c.stdout.String()))
	var open []bool
	for dec.More() {
		var w sessionWindow
		if err := dec.Decode(&w); err != nil {
			t.Fatal(err)
		}
		open = append(open, w.Open)
		if w.Open && (w.ClosesAt == nil || w.ClosesAt.Before(now.Add(21*time.Hour))) {
			t.Errorf("%s closes at %v; want about 22-23 hours from now", w.Phone, w.ClosesAt)
		}
	}
	if fmt.Sprint(open) != "[true true false]" {
		t.Fatalf("open %v, want [true true false]\n%s", open, c.stdout.String())
	}
}
