package dispatcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/recipients"
)

// messySpec loads a spec over testdata/messy.csv: a BOM, CRLF and LF, quoted
// commas and newlines, mixed phone formats, blank lines, invalid UTF-8, a
// short row, a formula, a suppressed number and a truncated last line.
func messySpec(t *testing.T) (campaigns.Spec, string) {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/messy.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "messy.csv"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sup := filepath.Join(dir, "suppress.txt")
	if err := os.WriteFile(sup, []byte("phone\n0803 123 4573\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := campaigns.ParseSpec(filepath.Join(dir, "c.yaml"), []byte("id: messy\nchannel: sms\nchannel_id: c\nmessage: \"Hi {{.name}}\"\nrecipients: messy.csv\nbatch_size: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	return spec, sup
}

// The messy file is handled row by row: each refused row is reported with
// its record number, line, value and reason; counts add up to the rows.
func TestDispatchMessyFileRowByRow(t *testing.T) {
	t.Parallel()
	spec, sup := messySpec(t)
	var got []Reject
	res, err := Dispatch(context.Background(), nil, nil, spec, openSource(t, spec), Options{
		DryRun: true, SuppressFiles: []string{sup}, Reject: func(r Reject) { got = append(got, r) }})
	if err != nil {
		t.Fatal(err)
	}
	want := []Reject{
		{Row: 5, Line: 8, Value: "12345", Reason: `invalid address: "12345" is not a valid phone number for region NG`},
		{Row: 6, Line: 9, Value: "08031234570", Reason: `field "name" is not valid UTF-8; save the file as CSV UTF-8`},
		{Row: 7, Line: 11, Value: "08031234571", Reason: "has 2 fields, the header has 3"},
		{Row: 8, Line: 12, Value: "=1+2", Reason: `invalid address: "=1+2" is not a valid phone number for region NG`},
		{Row: 11, Line: 15, Value: "", Reason: "malformed CSV"},
	}
	for i := range got {
		if i < len(want) && strings.HasPrefix(got[i].Reason, want[i].Reason) {
			got[i].Reason = want[i].Reason
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
	counts := map[string]int{"rows": res.Rows, "valid": res.Valid, "invalid": res.Invalid,
		"duplicates": res.Duplicates, "suppressed": res.Suppressed, "batches": res.Batches}
	wantCounts := map[string]int{"rows": 11, "valid": 4, "invalid": 5, "duplicates": 1, "suppressed": 1, "batches": 2}
	if diff := cmp.Diff(wantCounts, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// The batches hold the valid recipients in file order, normalised to E.164,
// each with its own rendered message.
func TestDispatchBatchesInFileOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec, sup := messySpec(t)
	if _, err := b.dispatch(t, context.Background(), spec, Options{SuppressFiles: []string{sup}}); err != nil {
		t.Fatal(err)
	}
	var got []campaigns.Item
	for _, bt := range b.tasks(t, spec) {
		got = append(got, bt.Items...)
	}
	item := func(row int, to, text string) campaigns.Item {
		return campaigns.Item{Row: row, To: to, Content: &campaigns.Content{Text: text}}
	}
	want := []campaigns.Item{
		item(1, "+2348031234567", "Hi Ada"),
		item(2, "+2348031234568", "Hi Bayo\nOn two lines"), // encoding/csv reads a quoted CRLF as \n
		item(4, "+2348031234569", "Hi Chidi"),
		item(10, "+2348031234574", "Hi Fine"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
}

// A dry run estimates the sending time from the tighter of the configured
// limit and the spec's rate.
func TestEstimateSend(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		n     int
		l     campaigns.Rate
		secs  float64
		bound string
	}{
		{"no limit", 1000, campaigns.Rate{}, 0, "none"},
		{"per second", 10100, campaigns.Rate{PerSecond: 100}, 100, "per_second"},
		{"per minute binds", 10000, campaigns.Rate{PerSecond: 1000, PerMinute: 1000}, 540, "per_minute"},
		{"per day binds", 250000, campaigns.Rate{PerSecond: 100, PerDay: 100000}, 2 * 86400, "per_day"},
	} {
		e := EstimateSend(tc.n, tc.l)
		if e.Seconds != tc.secs || e.Bound != tc.bound {
			t.Errorf("%s: EstimateSend(%d) = %v s bound %s; want %v s bound %s", tc.name, tc.n, e.Seconds, e.Bound, tc.secs, tc.bound)
		}
	}
	got := EffectiveRate(campaigns.Rate{PerSecond: 50, PerDay: 1000}, &campaigns.Rate{PerSecond: 5})
	if diff := cmp.Diff(campaigns.Rate{PerSecond: 5, PerDay: 1000}, got); diff != "" {
		t.Errorf("EffectiveRate (-want +got):\n%s", diff)
	}
}

// The dedupe set stays within a few tens of bytes per recipient.
func TestHashSetMemory(t *testing.T) {
	t.Parallel()
	s := newHashSet(0)
	const n = 1 << 20
	for i := 0; i < n; i++ {
		if !s.Add(addrHash("+234803" + string(rune('0'+i%10)) + string(rune(i)))) {
			continue
		}
	}
	per := float64(s.Bytes()) / float64(s.Len())
	if per > 24 {
		t.Errorf("%.1f bytes per member, want at most 24", per)
	}
	if s.Add(addrHash("+234803" + "0" + string(rune(0)))) {
		t.Error("a member was added twice")
	}
	t.Logf("%d members in %d bytes: %.1f bytes each", s.Len(), s.Bytes(), per)
}

// The reader reuses applied chunks and their field maps: no row may render
// with a field left over from an earlier row. Every seventh row lacks the
// name, so it must be refused, never sent with a neighbour's name.
func TestDispatchReusedRowsKeepNoFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.spec(t, "reuse", smsSpec, "phone,name\n")
	const n = 20 * chunkRows
	var sb strings.Builder
	for i := 1; i <= n; i++ {
		if i%7 == 0 {
			fmt.Fprintf(&sb, "{\"phone\":\"0803%07d\"}\n", i)
		} else {
			fmt.Fprintf(&sb, "{\"phone\":\"0803%07d\",\"name\":\"P%d\"}\n", i, i)
		}
	}
	src, err := recipients.NewSource(strings.NewReader(sb.String()), recipients.SourceOptions{Format: "ndjson"})
	if err != nil {
		t.Fatal(err)
	}
	var rejected []int
	res, err := Dispatch(context.Background(), b.store, b.client, spec, src, Options{Workers: 2,
		Reject: func(r Reject) { rejected = append(rejected, r.Row) }})
	if err != nil {
		t.Fatal(err)
	}
	var wantRejected []int
	for i := 7; i <= n; i += 7 {
		wantRejected = append(wantRejected, i)
	}
	if diff := cmp.Diff(wantRejected, rejected); diff != "" {
		t.Errorf("rejected rows (-want +got):\n%s", diff)
	}
	items := 0
	for _, bt := range b.tasks(t, spec) {
		for _, it := range bt.Items {
			items++
			if want := fmt.Sprintf("Hi P%d", it.Row); it.Content == nil || it.Content.Text != want {
				t.Fatalf("row %d: content %+v, want %q", it.Row, it.Content, want)
			}
		}
	}
	if items != res.Valid || items != n-len(wantRejected) {
		t.Errorf("%d items, %d valid; want %d", items, res.Valid, n-len(wantRejected))
	}
}
