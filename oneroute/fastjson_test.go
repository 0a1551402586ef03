package oneroute

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// slowResults is how a send's answer is read without the fast path:
// parseEnvelope, then encoding/json on the payload.
func slowResults(data []byte) ([]Result, bool) {
	env, err := parseEnvelope(data)
	if err != nil || env.failed() || env.payload == nil {
		return nil, false
	}
	var out []Result
	if json.Unmarshal(env.payload, &out) != nil {
		return nil, false
	}
	return out, true
}

// addResponses seeds f with the recorded answers in testdata/responses and
// a few near misses of the fast path.
func addResponses(f *testing.F) {
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
	for _, s := range []string{
		` { "data" : [ {"status":"success" , "response":"1"} , {"response":"Invalid number","status":"failed"} ] , "success" : true } `,
		`{"data":[],"success":true}`,
		`{"Data":[{"status":"success","response":"1"}]}`,
		`{"data":[{"status":"success","response":"1"}],"data":null}`,
		`{"data":[{"status":"succ\u0065ss","response":"1"}]}`,
		`{"data":[{"status":"success","response":"\xff"}]}`,
		`{"data":[{"status":"success","response":"é"}],"message":"ok"}`,
		`{"data":[{"status":"success","response":"1","status":"failed"}]}`,
		`{"data":[{"status":"success","response":"1"}]}x`,
		`{"data":[{"status":"success","response":"1"}],"success":false}`,
		`{}`, `[]`, `[null]`, `null`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzFastResults: whenever the fast reader accepts an answer, it reads the
// same results as parseEnvelope and encoding/json.
func FuzzFastResults(f *testing.F) {
	addResponses(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := fastResults(data)
		if !ok {
			return
		}
		slow, sok := slowResults(data)
		if !sok {
			t.Fatalf("fast path read %q, encoding/json did not", data)
		}
		if diff := cmp.Diff(slow, fast); diff != "" {
			t.Fatalf("results of %q (-encoding/json +fast):\n%s", data, diff)
		}
	})
}

// TestFastResultsUsual: the answers a send usually gets take the fast path.
func TestFastResultsUsual(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"results_data.json", "results_body.json", "results_bare_array.json", "results_failed_entry.json", "results_data_null_body_set.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "responses", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := fastResults(b); !ok {
			t.Errorf("%s: not read by the fast path", name)
		}
	}
}

// FuzzEncodeSMS: the hand-written Send SMS body decodes to the request, as
// json.Marshal's does.
func FuzzEncodeSMS(f *testing.F) {
	f.Add("Hello Ada, your order 1234 ships today.", "2348031234567", "", "")
	f.Add("quote \" back \\ nl \n tab \t ctl \x01 html <&> ls \u2028 ps \u2029 bad \xff é 😀", "+234 803", "Fanout", "https://example.com/cb?a=1&b=2")
	f.Fuzz(func(t *testing.T, msg, to, sender, cb string) {
		r := SMSRequest{Message: msg, Recipients: []string{to, to + "1"}, Sender: sender, CallbackURL: cb}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got := encodeSMS(r)
		if !json.Valid(got) {
			t.Fatalf("invalid JSON %q", got)
		}
		var a, b SMSRequest
		if err := json.Unmarshal(want, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got, &b); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, b); diff != "" {
			t.Fatalf("decoded body (-json.Marshal +encodeSMS):\n%s", diff)
		}
	})
}
