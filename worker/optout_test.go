package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/dispatcher"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// Stop words match whole replies in any case, ignoring spaces and
// punctuation; a sentence that merely contains one does not.
func TestStopWordsMatch(t *testing.T) {
	t.Parallel()
	def := NewStopWords()
	custom := NewStopWords("arrêt", " Opt-Out ")
	for _, tc := range []struct {
		name, text string
		words      StopWords
		want       string // "" no match
	}{
		{"upper", "STOP", def, "STOP"},
		{"lower and spaces", "  stop \n", def, "STOP"},
		{"punctuation", "Stop!!", def, "STOP"},
		{"quoted", `"unsubscribe."`, def, "UNSUBSCRIBE"},
		{"two words", "stop all", def, "STOPALL"},
		{"cancel", "Cancel", def, "CANCEL"},
		{"end", "end", def, "END"},
		{"quit", "QUIT.", def, "QUIT"},
		{"sentence", "please stop", def, ""},
		{"other word", "stopped", def, ""},
		{"empty", "", def, ""},
		{"only punctuation", "?!", def, ""},
		{"long text", "stop " + string(bytes.Repeat([]byte{'!'}, 80)), def, ""},
		{"custom accented", "Arrêt", custom, "ARRÊT"},
		{"custom hyphenated", "opt out", custom, "OPTOUT"},
		{"custom replaces defaults", "STOP", custom, ""},
		{"zero value", "STOP", StopWords{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.words.Match(tc.text)
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("Match(%q) = %q, %v; want %q", tc.text, got, ok, tc.want)
			}
		})
	}
}

func newMessage(t *testing.T, body string) oneroute.Event {
	t.Helper()
	ev, err := oneroute.ParseEvent([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// Inbound records the sender of a stop word in its channel kind's set, and
// nothing for other texts, the business's own messages or other events; a
// stop word without a readable sender is ErrNoSender.
func TestOptOutsInbound(t *testing.T) {
	t.Parallel()
	store := storage.New(redistest.Start(t).Client(t))
	o, err := NewOptOuts(store, nil, "ng")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wa := func(text, customer string, auth bool) string {
		return fmt.Sprintf(`{"event":"newMessage","message":{"sender":{"name":"x","authUser":%v},"content":%q,"contentType":"TEXT","conversation_id":"c1"},
			"conversation":{"id":"c1","subject":null,"customer":{"name":"x","email":null},"customer_id":%q}}`, auth, text, customer)
	}
	for _, tc := range []struct {
		name, body string
		err        error
	}{
		{"whatsapp stop", wa("Stop", "cust-2348030000001", false), nil},
		{"local number", wa("END", "cust-08030000002", false), nil},
		{"not a stop word", wa("hello", "cust-2348030000003", false), nil},
		{"business side", wa("STOP", "cust-2348030000004", true), nil},
		{"no customer id", wa("STOP", "", false), ErrNoSender},
		{"bad number", wa("STOP", "cust-12", false), ErrNoSender},
		{"email", `{"event":"newMessage","message":{"sender":{"authUser":false},"content":"unsubscribe","conversation_id":"c2"},
			"conversation":{"id":"c2","subject":"Re: offers","customer":{"name":"Ada","email":"Ada@Example.com"}}}`, nil},
		{"other event", `{"event":"messageStatus","message":{"externalId":"w1","status":"read"}}`, nil},
	} {
		if err := o.Inbound(ctx, newMessage(t, tc.body)); !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	got, _ := store.OptedOut(ctx, storage.OptOutWhatsApp, []string{"+2348030000001", "+2348030000002", "+2348030000003", "+2348030000004"})
	for i, want := range []string{"stop-word:STOP", "stop-word:END", "", ""} {
		if (got[i] == nil) != (want == "") || (got[i] != nil && got[i].Reason != want) {
			t.Errorf("number %d: %+v, want reason %q", i+1, got[i], want)
		}
	}
	if em, _ := store.OptedOut(ctx, storage.OptOutEmail, []string{"ada@example.com"}); em[0] == nil || em[0].Reason != "stop-word:UNSUBSCRIBE" {
		t.Errorf("email: %+v", em[0])
	}
	if n, _ := store.CountOptOuts(ctx, storage.OptOutSMS); n != 0 {
		t.Errorf("sms set has %d entries; WhatsApp replies must not opt out of SMS", n)
	}
}

// countingProvider counts the WhatsApp messages sent to each recipient.
type countingProvider struct {
	Provider
	mu   sync.Mutex
	sent map[string]int
}

func (c *countingProvider) SendTemplate(ctx context.Context, r oneroute.TemplateRequest) ([]oneroute.Result, error) {
	res, err := c.Provider.SendTemplate(ctx, r)
	c.mu.Lock()
	for _, m := range r.Messages {
		c.sent[m.To]++
	}
	c.mu.Unlock()
	return res, err
}

// A STOP received mid-campaign stops further sends to that number: the
// next task that claims its batch skips it, counted opted_out (and
// suppressed) with the reason in its ledger row. A number that STOPs after
// its message went out keeps its one message. The next campaign's dispatch
// leaves all of them out.
func TestStopMidCampaignSkipsTheNumber(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{DLRDelay: -1})
	t.Cleanup(sb.Close)
	api := httptest.NewServer(sb)
	t.Cleanup(api.Close)
	client, err := oneroute.New(oneroute.Options{BaseURL: api.URL, APIKey: sandbox.KeyPrefix + "optout"})
	if err != nil {
		t.Fatal(err)
	}
	store := storage.New(redistest.Start(t).Client(t))
	prov := &countingProvider{Provider: client, sent: map[string]int{}}
	mux := NewMux(Deps{Store: store, Provider: prov, Enqueuer: &fakeEnqueuer{}}, Options{MaxAttempts: 3})
	optouts, err := NewOptOuts(store, nil, "NG")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// A WhatsApp campaign of 15 numbers in three batches of 5.
	spec := campaigns.Spec{ID: "stopmid", Channel: campaigns.ChannelWhatsAppTemplate, From: sandbox.WhatsAppNumber,
		Template: &campaigns.Template{Name: "first_welcome_messsage", Language: "en", Parameters: []string{"{{.x}}"}}, Recipients: "r.csv"}
	if _, err := store.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	var batches []*campaigns.Batch
	for seq := 0; seq < 3; seq++ {
		b := &campaigns.Batch{Campaign: spec.ID, Seq: seq, Channel: spec.Channel, From: spec.From, Template: spec.Template.Name, Language: "en"}
		for row := seq*5 + 1; row <= seq*5+5; row++ {
			b.Items = append(b.Items, campaigns.Item{Row: row, To: fmt.Sprintf("+2348030000%03d", row), Content: &campaigns.Content{Params: []string{"x"}}})
		}
		if _, err := store.AddBatch(ctx, spec.ID, seq, 5, seq*5+5); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
	}
	if err := store.FinishDispatch(ctx, spec.ID, storage.DispatchCounts{Rows: 15}); err != nil {
		t.Fatal(err)
	}
	run := func(b *campaigns.Batch) {
		t.Helper()
		if err := mux.ProcessTask(ctx, asynq.NewTask(tasks.SendType(b.Channel), tasks.Encode(b))); err != nil {
			t.Fatal(err)
		}
	}
	// stop has the sandbox receive a customer's reply and feeds the
	// newMessage event it pushes to Inbound, as the webhook receiver does.
	stop := func(number, text string) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"from": number, "to": sandbox.WhatsAppNumber, "message": text})
		resp, err := http.Post(api.URL+"/sandbox/inbound", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != 200 {
			t.Fatalf("sandbox inbound: %d %v", resp.StatusCode, err)
		}
		if err := optouts.Inbound(ctx, newMessage(t, string(env.Data))); err != nil {
			t.Fatal(err)
		}
	}

	run(batches[0])
	stop("2348030000003", "STOP")  // already sent: keeps its one message
	stop("2348030000008", "stop.") // batch 1, not sent yet
	stop("+2348030000014", " Unsubscribe ")
	run(batches[1])
	run(batches[2])
	run(batches[1]) // a re-run (retry, redelivery) sends nothing either

	for row, want := range map[int]int{3: 1, 8: 0, 14: 0, 7: 1, 15: 1} {
		if got := prov.sent[fmt.Sprintf("+2348030000%03d", row)]; got != want {
			t.Errorf("row %d sent %d times, want %d", row, got, want)
		}
	}
	p, err := store.Progress(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent != 13 || p.Skipped != 2 || p.OptedOut != 2 || p.Suppressed != 2 || p.Sent+p.Failed+p.Unknown+p.Skipped != p.Total {
		t.Errorf("progress %+v; want sent 13, skipped, opted_out and suppressed 2, every recipient final", p)
	}
	entries, _ := store.Ledger(ctx, spec.ID, []int{8, 14})
	for i, want := range []string{"opted out: stop-word:STOP", "opted out: stop-word:UNSUBSCRIBE"} {
		if entries[i].State != storage.LedgerSkipped || entries[i].Value != want {
			t.Errorf("row %d ledger %c %q, want skipped %q", entries[i].Row, entries[i].State, entries[i].Value, want)
		}
	}

	// The next campaign to these numbers leaves the three who stopped out.
	next := campaigns.Spec{ID: "stopnext", Channel: campaigns.ChannelWhatsAppTemplate, From: sandbox.WhatsAppNumber, DefaultRegion: "NG",
		Template: &campaigns.Template{Name: "first_welcome_messsage", Language: "en", Parameters: []string{"{{.name}}"}}, Recipients: "r.csv"}
	src, err := recipients.NewSource(strings.NewReader("phone,name\n08030000003,a\n08030000007,b\n+2348030000008,c\n2348030000014,d\n"), recipients.SourceOptions{Format: "csv"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := dispatcher.Dispatch(ctx, store, &fakeEnqueuer{}, next, src, dispatcher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Valid != 1 || res.Suppressed != 3 {
		t.Errorf("next campaign: %d valid, %d suppressed; want 1 and 3", res.Valid, res.Suppressed)
	}
}

// Match takes any reply without panicking; a match is one of the words, and
// surrounding spaces and punctuation change nothing.
func FuzzStopWordsMatch(f *testing.F) {
	for _, s := range []string{"STOP", " stop! ", "Stop All", "unsubscribe.", "please stop", "", "ＳＴＯＰ", "\xff\xfe", "end\u200b"} {
		f.Add(s)
	}
	words := NewStopWords()
	known := map[string]bool{}
	for _, w := range config.DefaultStopWords() {
		known[w] = true
	}
	f.Fuzz(func(t *testing.T, text string) {
		w, ok := words.Match(text)
		if ok && !known[w] {
			t.Fatalf("Match(%q) = %q, not a stop word", text, w)
		}
		if len(text) <= 60 {
			if w2, ok2 := words.Match(" " + text + "!"); w2 != w || ok2 != ok {
				t.Fatalf("Match(%q) = %q %v, but with a space and a ! %q %v", text, w, ok, w2, ok2)
			}
		}
	})
}
