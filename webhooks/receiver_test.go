package webhooks_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/webhooks"
)

const secret = "whsec_test"

type testBundle struct {
	rdb   *redis.Client
	store *storage.Store
	recv  *webhooks.Receiver
	url   string
}

func setup(t *testing.T, o webhooks.ReceiverOptions) *testBundle {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	store := storage.New(rdb)
	if o.Secret == "" {
		o.Secret = secret
	}
	recv := webhooks.NewReceiver(store, o)
	recv.Start()
	srv := httptest.NewServer(recv)
	t.Cleanup(func() { srv.Close(); recv.Stop() })
	return &testBundle{rdb: rdb, store: store, recv: recv, url: srv.URL + webhooks.Path}
}

// post sends body with the signature header sig (none when "") and returns
// the status; chunked sends it without a Content-Length.
func (b *testBundle) post(t *testing.T, body []byte, sig string, chunked bool) int {
	t.Helper()
	var r = bytes.NewReader(body)
	req, err := http.NewRequest(http.MethodPost, b.url, r)
	if err != nil {
		t.Fatal(err)
	}
	if chunked {
		req.ContentLength = -1
		req.Body = io.NopCloser(struct{ io.Reader }{r})
		req.GetBody = nil
	}
	if sig != "" {
		req.Header.Set(oneroute.SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// snapshot is every key of the Redis with its serialised value (TTLs left
// out: they run down by themselves).
func (b *testBundle) snapshot(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := b.rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		if typ := b.rdb.Type(ctx, k).Val(); typ == "stream" {
			// miniredis cannot DUMP a stream: its entries and groups say
			// the same.
			msgs, err := b.rdb.XRange(ctx, k, "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			groups, _ := b.rdb.XInfoGroups(ctx, k).Result()
			out[k] = fmt.Sprint(msgs, groups)
			continue
		}
		v, err := b.rdb.Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

func dlrBody(id, status string) []byte {
	return []byte(fmt.Sprintf(`{"event":"smsDeliveryReport","message":null,"conversation":{"id":%q,"externalId":"ext-%s","status":%q,"reason":"x","from":"OneRoute","to":"2348030000001","units":1,"delivered_time":"2026-12-03T06:00:02.000Z","createdAt":"2026-12-03T06:00:00.000Z"}}`, id, id, status))
}

// Webhook safety (issue 10): a bad signature, one changed byte, a replayed
// event, an oversized body and a malformed event are each refused, and
// none of them changes anything in Redis; a good event is recorded once.
func TestReceiverRefusesWithoutStateChange(t *testing.T) {
	t.Parallel()
	b := setup(t, webhooks.ReceiverOptions{MaxBody: 4 << 10})
	good := dlrBody("1234567890123456789", "delivered")
	if got := b.post(t, good, oneroute.WebhookSignature(secret, good), false); got != http.StatusOK {
		t.Fatalf("a good event: status %d, want 200", got)
	}
	if n := b.rdb.XLen(context.Background(), "fanout:{hooks}:s").Val(); n != 1 {
		t.Fatalf("stream holds %d events after one good one, want 1", n)
	}
	before := b.snapshot(t)

	changed := bytes.Clone(good)
	changed[bytes.Index(changed, []byte("delivered"))] = 'D' // one byte
	big := append(bytes.Clone(good[:len(good)-1]), []byte(`,"pad":"`+strings.Repeat("x", 4<<10)+`"}`)...)
	junk := []byte(`not json`)
	cases := []struct {
		name    string
		body    []byte
		sig     string
		chunked bool
		want    int
	}{
		{"no signature", good, "", false, http.StatusUnauthorized},
		{"bad signature", good, oneroute.WebhookSignature("another secret", good), false, http.StatusUnauthorized},
		{"signature not hex", good, strings.Repeat("zz", 64), false, http.StatusUnauthorized},
		{"one changed byte", changed, oneroute.WebhookSignature(secret, good), false, http.StatusUnauthorized},
		{"replayed event", good, oneroute.WebhookSignature(secret, good), false, http.StatusOK},
		{"oversized body", big, oneroute.WebhookSignature(secret, big), false, http.StatusRequestEntityTooLarge},
		{"oversized body, chunked", big, oneroute.WebhookSignature(secret, big), true, http.StatusRequestEntityTooLarge},
		{"signed but malformed", junk, oneroute.WebhookSignature(secret, junk), false, http.StatusBadRequest},
	}
	for _, c := range cases {
		if got := b.post(t, c.body, c.sig, c.chunked); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
		if diff := cmp.Diff(before, b.snapshot(t)); diff != "" {
			t.Errorf("%s changed Redis (-before +after):\n%s", c.name, diff)
		}
	}
}

// A receiver whose Redis fails answers 503, so OneRoute retries; the event
// is recorded when it comes again.
func TestReceiverAnswers503WhenRedisFails(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	recv := webhooks.NewReceiver(storage.New(rdb), webhooks.ReceiverOptions{Secret: secret})
	recv.Start()
	h := httptest.NewServer(recv)
	t.Cleanup(func() { h.Close(); recv.Stop() })
	b := &testBundle{rdb: rdb, url: h.URL + webhooks.Path}
	body := dlrBody("42", "undelivered")
	sig := oneroute.WebhookSignature(secret, body)
	// A script that errors stands for a failing Redis: a key of the wrong
	// type under the stream's name.
	if err := rdb.Set(context.Background(), "fanout:{hooks}:s", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := b.post(t, body, sig, false); got != http.StatusServiceUnavailable {
		t.Fatalf("status %d with a failing Redis, want 503", got)
	}
	rdb.Del(context.Background(), "fanout:{hooks}:s")
	if got := b.post(t, body, sig, false); got != http.StatusOK {
		t.Fatalf("status %d on the retry, want 200", got)
	}
	if n := rdb.XLen(context.Background(), "fanout:{hooks}:s").Val(); n != 1 {
		t.Fatalf("stream holds %d events, want 1", n)
	}
}
