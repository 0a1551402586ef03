package oneroute

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// slowSMSList is how a list page is read without the fast path:
// parseEnvelope, then encoding/json on the payload.
func slowSMSList(data []byte) ([]SMSMessage, *Meta, bool) {
	env, err := parseEnvelope(data)
	if err != nil || env.failed() || env.payload == nil {
		return nil, nil, false
	}
	var out []SMSMessage
	if json.Unmarshal(env.payload, &out) != nil {
		return nil, nil, false
	}
	return out, env.meta, true
}

// sameList fails t unless the fast path read data as encoding/json did:
// the same messages (times to the location, which cmp would not see) and
// the same meta.
func sameList(t *testing.T, data []byte, fast []SMSMessage, fastMeta *Meta) {
	t.Helper()
	slow, slowMeta, ok := slowSMSList(data)
	if !ok {
		t.Fatalf("fast path read %q, encoding/json did not", data)
	}
	if diff := cmp.Diff(slow, fast); diff != "" {
		t.Fatalf("messages of %q (-encoding/json +fast):\n%s", data, diff)
	}
	if !reflect.DeepEqual(slow, fast) {
		t.Fatalf("messages of %q differ beyond cmp (time locations?):\n%#v\n%#v", data, slow, fast)
	}
	if diff := cmp.Diff(slowMeta, fastMeta); diff != "" {
		t.Fatalf("meta of %q (-encoding/json +fast):\n%s", data, diff)
	}
}

// listNearMisses are answers at the edge of the fast path: each is either
// read by it exactly as encoding/json reads it, or left to encoding/json.
// Those marked fast must take the fast path.
var listNearMisses = []string{
	fast(`{"data":[],"success":true}`),
	fast(`{"data":null,"body":[],"success":true}`),
	fast(`[{"id":"1","units":2}]`),
	fast(`[]`), `[null]`, `null`, `{}`, fast(`{"data":[{}]}`),
	fast(` { "data" : [ { "id" : "1" , "units" : -0 } ] , "meta" : { "page" : 2 , "total" : 7 } } `),
	fast(`{"data":[{"id":"1"}],"meta":null}`),
	fast(`{"data":[{"id":"1"}],"meta":{}}`),
	`{"data":[{"id":"1"}],"meta":{"page":1.0}}`,
	`{"data":[{"id":"1"}],"meta":{"Page":1}}`,
	`{"data":[{"id":"1"}],"meta":"x"}`,
	`{"data":[{"id":"1"}],"success":false}`,
	`{"data":[{"ID":"1"}]}`,
	`{"data":[{"id":"1","id":"2"}]}`,
	`{"data":[{"id":"1"}],"data":[]}`,
	`{"data":[{"units":1e2}]}`,
	`{"data":[{"units":01}]}`,
	`{"data":[{"units":99999999999999999999}]}`,
	`{"data":[{"units":"1"}]}`,
	fast(`{"data":[{"message":"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00"}]}`),
	`{"data":[{"message":"lone \ud83d x"}]}`,
	`{"data":[{"message":"lone \ude00"}]}`,
	`{"data":[{"message":"bad \x escape"}]}`,
	`{"data":[{"message":"raw ` + "\xff" + `"}]}`,
	`{"data":[{"message":"ctl ` + "\x01" + `"}]}`,
	fast(`{"data":[{"delivered_time":null,"createdAt":"2024-02-29T23:59:59.999999999Z"}]}`),
	`{"data":[{"createdAt":"2023-02-29T00:00:00Z"}]}`,
	`{"data":[{"createdAt":"2023-02-28T24:00:00Z"}]}`,
	`{"data":[{"createdAt":"2023-02-28T00:00:60Z"}]}`,
	`{"data":[{"createdAt":"2023-02-28T00:00:00.Z"}]}`,
	`{"data":[{"createdAt":"2023-02-28T00:00:00.1234567891Z"}]}`,
	`{"data":[{"createdAt":"2023-02-28T00:00:00,5Z"}]}`,
	`{"data":[{"createdAt":"2023-02-28T00:00:00+01:00"}]}`,
	`{"data":[{"createdAt":"2023-02-28t00:00:00Z"}]}`,
	fast(`{"data":[{"createdAt":"0000-01-01T00:00:00Z"}]}`),
	`{"data":[{"createdAt":"2023-02-28T00:00:00\u005a"}]}`,
	`{"data":[{"createdAt":null}]}`,
	`{"data":[{"updatedAt":"2023-1-28T00:00:00Z"}]}`,
	`{"data":[{"updatedAt":"2023-01-28T0:00:00Z"}]}`,
	`{"data":[{"delivered_time":"2023-01-28T00:00:00.5Z","to":"234"}]}x`,
	// Keys the client does not read: skipped when valid JSON and not a
	// known key in another case.
	fast(`{"data":[{"id":"1","campaign_id":"c-1","firm_id":7,"extra":{"a":[1,-2.5e3,true,null,"\u00e9"]}}],"code":200,"errors":[],"meta":{"page":1,"pages":3}}`),
	`{"data":[{"id":"1","Status":"delivered"}]}`,
	`{"data":[{"id":"1","ſtatus":"delivered"}]}`,
	`{"data":[{"id":"1","extra":01}]}`,
	`{"data":[{"id":"1","extra":"\x"}]}`,
	`{"DATA":[{"id":"1"}],"data":[]}`,
	`{"data":[{"id":"1"}],"meta":{"page":1,"TOTAL":2}}`,
}

// listFast holds the near misses marked fast.
var listFast = map[string]bool{}

func fast(s string) string {
	listFast[s] = true
	return s
}

// addListResponses seeds f with the recorded answers and the near misses.
func addListResponses(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "responses", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range listNearMisses {
		f.Add([]byte(s))
	}
}

// FuzzFastSMSList: whenever the fast reader accepts a list page, it reads
// the same messages and meta as parseEnvelope and encoding/json.
func FuzzFastSMSList(f *testing.F) {
	addListResponses(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, meta, ok := fastSMSList(data)
		if !ok {
			return
		}
		sameList(t, data, fast, meta)
	})
}

// TestFastSMSListNearMisses: each near miss is read as encoding/json reads
// it, or left to it; the ones marked fast are read by the fast path.
func TestFastSMSListNearMisses(t *testing.T) {
	t.Parallel()
	for _, s := range listNearMisses {
		fast, meta, ok := fastSMSList([]byte(s))
		if ok {
			sameList(t, []byte(s), fast, meta)
		}
		if listFast[s] && !ok {
			t.Errorf("%s: not read by the fast path", s)
		}
	}
}

// TestFastSMSListSandboxPage: the sandbox's page (escapes, non-ASCII,
// delivered and pending messages, meta) takes the fast path and reads as
// encoding/json reads it.
func TestFastSMSListSandboxPage(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("testdata", "responses", "list_sms_sandbox.json"))
	if err != nil {
		t.Fatal(err)
	}
	fast, meta, ok := fastSMSList(b)
	if !ok {
		t.Fatal("not read by the fast path")
	}
	sameList(t, b, fast, meta)
	if want := (&Meta{Page: 1, Size: 1000, Total: 3}); *meta != *want {
		t.Errorf("meta = %+v, want %+v", *meta, *want)
	}
	at := time.Date(2026, 12, 3, 13, 5, 3, 120e6, time.UTC)
	if len(fast) != 3 || fast[1].DeliveredTime == nil || !fast[1].DeliveredTime.Equal(at) || fast[0].DeliveredTime != nil {
		t.Errorf("messages = %+v", fast)
	}
	if got, want := fast[0].Message, "Hello Ada, your order 1234 ships today & tomorrow.\n"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

// BenchmarkSMSListPage compares reading a sandbox-like page of 1,000
// messages with the fast path and with encoding/json (the old path).
func BenchmarkSMSListPage(b *testing.B) {
	page := sandboxLikePage(1000)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(page)))
		for b.Loop() {
			if _, _, ok := fastSMSList(page); !ok {
				b.Fatal("not fast")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(page)))
		for b.Loop() {
			if _, _, ok := slowSMSList(page); !ok {
				b.Fatal("not read")
			}
		}
	})
}

// sandboxLikePage is a page of n messages as the sandbox lists them,
// encoded by encoding/json: two thirds final, one third pending.
func sandboxLikePage(n int) []byte {
	type view struct {
		ID            string  `json:"id"`
		ExternalID    string  `json:"externalId"`
		Status        string  `json:"status"`
		Reason        string  `json:"reason"`
		From          string  `json:"from"`
		To            string  `json:"to"`
		Message       string  `json:"message,omitempty"`
		Units         int     `json:"units"`
		DeliveredTime *string `json:"delivered_time"`
		CreatedAt     string  `json:"createdAt"`
		UpdatedAt     string  `json:"updatedAt"`
	}
	page := make([]view, n)
	t0 := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	for i := range page {
		created := t0.Add(time.Duration(i) * 7 * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
		v := view{ID: "47" + pad20(i), ExternalID: "ext-" + pad20(i)[1:], Status: DLRPending, Reason: "Message queued",
			From: "Fanout", To: "23480300" + pad20(i)[15:], Message: "Hello Ada, your order 1234 ships today.", Units: 1,
			CreatedAt: created, UpdatedAt: created}
		if i%3 != 0 {
			d := t0.Add(time.Duration(i)*7*time.Millisecond + 2*time.Second).Format("2006-01-02T15:04:05.000Z")
			v.Status, v.Reason, v.DeliveredTime, v.UpdatedAt = DLRDelivered, "Message delivered to handset", &d, d
		}
		page[i] = v
	}
	b, err := json.Marshal(map[string]any{"data": page, "message": "Messages fetched successfully", "success": true,
		"meta": map[string]int{"page": 1, "size": n, "total": 5 * n}})
	if err != nil {
		panic(err)
	}
	return b
}

func pad20(i int) string {
	s := "00000000000000000000" + itoa(i)
	return s[len(s)-20:]
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestFetchSMSMessagesFastPath: the client returns the fast path's page
// and meta, equal to what encoding/json reads from the same answer.
func TestFetchSMSMessagesFastPath(t *testing.T) {
	t.Parallel()
	page, err := os.ReadFile(filepath.Join("testdata", "responses", "list_sms_sandbox.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(page)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Options{BaseURL: srv.URL, APIKey: "test_x"})
	if err != nil {
		t.Fatal(err)
	}
	msgs, meta, err := c.FetchSMSMessages(context.Background(), "ch", "", Page{Size: 1000})
	if err != nil {
		t.Fatal(err)
	}
	sameList(t, page, msgs, meta)
}
