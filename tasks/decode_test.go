package tasks

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/campaigns"
)

// batchSamples are payloads as dispatchers write them: personalised and
// shared content, templates, follow-ups, windows, rates.
func batchSamples() []*campaigns.Batch {
	personal := &campaigns.Batch{Campaign: "spring-1", Seq: 12, Channel: campaigns.ChannelSMS, ChannelID: "9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0002",
		From: "Fanout", Rate: &campaigns.Rate{PerSecond: 200, Burst: 20}, ExpiresAt: 1_796_000_000}
	for i := range 50 {
		personal.Items = append(personal.Items, campaigns.Item{Row: 1000 + i, To: "+23480300" + strconv.Itoa(10000+i),
			Content: &campaigns.Content{Text: "Hello Ada " + strconv.Itoa(i) + ", your order ships today & tomorrow <b>\n€ 😀"}})
	}
	return []*campaigns.Batch{
		personal,
		{Campaign: "c", Seq: 1, Channel: campaigns.ChannelEmail, Items: []campaigns.Item{{Row: 1, To: "a@b.c"}},
			Shared: &campaigns.Content{Text: "<p>hi</p>", Subject: "Hi \"there\""}},
		{Campaign: "c", Seq: 3, Attempt: 2, Retry: 1, Failures: 4, Channel: campaigns.ChannelWhatsAppTemplate, Template: "order_update", Language: "en", Request: 50,
			HeaderType: "image", AtLeastOnce: true, StartAt: 1_790_000_000,
			Window: &campaigns.Window{Start: "09:00", End: "18:00", Timezone: "Africa/Lagos", Days: []string{"mon", "tue"}},
			Items: []campaigns.Item{{Row: 7, To: "+2348030000007", TZ: "Europe/London",
				Content: &campaigns.Content{Params: []string{"Ada", "1234"}, Header: "https://example.com/a.png", Buttons: []string{}}}}},
		{Campaign: "p", Channel: campaigns.ChannelPush, WidgetID: "w-1", MediaURL: "https://example.com/m.jpg",
			Items: []campaigns.Item{}, Shared: &campaigns.Content{URL: "https://x.y", Subject: "T"}},
		{},
	}
}

// batchNearMisses are payloads at the edge of the fast path.
var batchNearMisses = []string{
	`{}`, `null`, `[]`, `{"cid":"c"} x`, `{"CID":"c"}`, `{"cid":"c","cid":"d"}`, `{"cid":"c","new_field":1}`,
	`{"seq":1.0}`, `{"seq":1e2}`, `{"seq":-0}`, `{"seq":01}`, `{"seq":9223372036854775807}`, `{"exp":-123456789012345678}`,
	`{"cid":null,"seq":null,"items":null,"sh":null,"rate":null,"win":null,"alo":null}`,
	`{"items":[null]}`, `{"items":[{"r":1,"r":2}]}`, `{"items":[{"c":{"p":[null]}}]}`, `{"items":[{"c":{"p":["a",1]}}]}`,
	`{"alo":false}`, `{"alo":"true"}`, `{"cid":"\ud800"}`, `{"cid":"\ud83d\ude00\u00e9\/"}`, `{"cid":"` + "\xff" + `"}`,
	`{"items":[{"c":{}}],"sh":{}}`, `{"win":{"days":[]}}`, `{"rate":{"burst":1,"Burst":2}}`,
	` { "cid" : "c" , "items" : [ { "r" : 1 , "to" : "x" } ] } `,
}

// FuzzDecodeBatch: whenever the fast reader accepts a payload, it reads
// the same Batch as encoding/json.
func FuzzDecodeBatch(f *testing.F) {
	for _, b := range batchSamples() {
		f.Add(Encode(b))
	}
	for _, s := range batchNearMisses {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast campaigns.Batch
		if !decodeBatch(data, &fast) {
			return
		}
		var slow campaigns.Batch
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fast path read %q, encoding/json did not: %v", data, err)
		}
		if diff := cmp.Diff(slow, fast); diff != "" {
			t.Fatalf("batch of %q (-encoding/json +fast):\n%s", data, diff)
		}
		if !reflect.DeepEqual(slow, fast) {
			t.Fatalf("batch of %q differs beyond cmp (nil or empty?)", data)
		}
	})
}

// TestDecodeBatchSamples: what Encode writes takes the fast path and reads
// back as encoding/json reads it; the near misses are read as
// encoding/json reads them, or left to it.
func TestDecodeBatchSamples(t *testing.T) {
	t.Parallel()
	for i, b := range batchSamples() {
		data := Encode(b)
		var fast, slow campaigns.Batch
		if !decodeBatch(data, &fast) {
			t.Errorf("sample %d: not read by the fast path: %s", i, data)
			continue
		}
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(slow, fast) {
			t.Errorf("sample %d (-encoding/json +fast):\n%s", i, cmp.Diff(slow, fast))
		}
	}
	for _, s := range batchNearMisses {
		var fast, slow campaigns.Batch
		if !decodeBatch([]byte(s), &fast) {
			continue
		}
		if err := json.Unmarshal([]byte(s), &slow); err != nil || !reflect.DeepEqual(slow, fast) {
			t.Errorf("%s: encoding/json %v (-encoding/json +fast):\n%s", s, err, cmp.Diff(slow, fast))
		}
	}
}

// TestDecodeMergesLikeEncodingJSON: Decode into a Batch that is not zero
// merges as json.Unmarshal does (the fast path only fills zero values),
// and errors still name the type.
func TestDecodeMergesLikeEncodingJSON(t *testing.T) {
	t.Parallel()
	data := []byte(`{"seq":2,"items":[{"r":1}]}`)
	got := campaigns.Batch{Campaign: "kept", Seq: 1}
	want := got
	if err := Decode(data, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged batch (-encoding/json +Decode):\n%s", diff)
	}
	var b campaigns.Batch
	if err := Decode([]byte(`{"seq":"x"}`), &b); err == nil {
		t.Error("a string seq decoded")
	}
}

// BenchmarkDecodeBatch compares Decode of a personalised 50-recipient SMS
// batch with json.Unmarshal (the old Decode).
func BenchmarkDecodeBatch(b *testing.B) {
	data := Encode(batchSamples()[0])
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var v campaigns.Batch
			if err := Decode(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var v campaigns.Batch
			if err := json.Unmarshal(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
