package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/internal/redistest"
)

// suppress add, remove, list and import manage one opt-out set per channel
// kind: addresses are normalised like recipients, import streams a file and
// names its bad lines, and list shows every entry with its reason.
func TestSuppressCommands(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := setup(t)
	b.env["REDIS_URL"] = srv.URL()
	must := func(args ...string) string {
		t.Helper()
		if code := b.run(t, args...); code != exitOK {
			t.Fatalf("%v: exit %d, stderr %s", args, code, b.stderr.String())
		}
		return b.stdout.String()
	}
	if out := must("suppress", "add", "--channel", "sms", "--reason", "complaint", "0803 000 0001", "+2348030000002"); !strings.HasPrefix(out, "2 added") {
		t.Errorf("add: %q", out)
	}
	must("suppress", "add", "--channel", "email", "Ada@Example.com")
	if out := must("suppress", "remove", "--channel", "sms", "2348030000002", "2348030000009"); !strings.HasPrefix(out, "1 removed") {
		t.Errorf("remove: %q", out)
	}

	var file strings.Builder
	file.WriteString("phone,name\n08030000010,A\n\n# a comment\nnot-a-number,B\n+2348030000001,again\n")
	for i := 11; i < 2511; i++ {
		fmt.Fprintf(&file, "0803%07d\n", i)
	}
	file.WriteString("12,short\n")
	path := filepath.Join(t.TempDir(), "optouts.csv")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var sum suppressImported
	if err := json.Unmarshal([]byte(must("suppress", "import", "--channel", "sms", "--json", path)), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Lines != 2507 || sum.Added != 2501 || sum.Already != 1 || sum.Invalid != 2 || len(sum.Problems) != 2 ||
		!strings.Contains(sum.Problems[0], "optouts.csv:5:") || !strings.Contains(sum.Problems[1], "optouts.csv:2507:") {
		t.Errorf("import %+v; want 2507 lines, 2501 added, 1 already, invalid lines 5 and 2507", sum)
	}

	entries := map[string]optOutEntry{}
	dec := json.NewDecoder(strings.NewReader(must("suppress", "list", "--json")))
	for dec.More() {
		var o optOutEntry
		if err := dec.Decode(&o); err != nil {
			t.Fatal(err)
		}
		entries[o.Channel+" "+o.Address] = o
	}
	if len(entries) != 2503 {
		t.Errorf("listed %d entries, want 2503 (2502 sms, 1 email)", len(entries))
	}
	for key, reason := range map[string]string{"sms +2348030000001": "complaint", "sms +2348030000010": "import", "email ada@example.com": "manual"} {
		if entries[key].Reason != reason || entries[key].At.IsZero() {
			t.Errorf("%s: %+v, want reason %q", key, entries[key], reason)
		}
	}
	if _, ok := entries["sms +2348030000002"]; ok {
		t.Error("a removed number is still listed")
	}
	if out := must("suppress", "list", "--channel", "email"); out == "" || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "email\tada@example.com\t") {
		t.Errorf("list --channel email: %q", out)
	}
	for _, args := range [][]string{{"suppress", "add", "+2348030000001"}, {"suppress", "add", "--channel", "fax", "1"}, {"suppress", "frobnicate"}} {
		if code := b.run(t, args...); code == exitOK {
			t.Errorf("%v: exit 0, want a usage error", args)
		}
	}
}
