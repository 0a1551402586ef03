package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/nyaruka/phonenumbers"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
)

// StopWords matches inbound replies that ask for no more messages. A reply
// matches when, once its letters are upper-cased and everything but letters
// and digits is dropped, it is one of the words: "stop", " Stop. ",
// "STOP!" and "stop all" (STOPALL) match; "please stop" does not. The zero
// value matches nothing; NewStopWords builds one.
type StopWords struct {
	words map[string]string // folded form -> the word as configured
}

// NewStopWords returns a matcher of words; none means
// config.DefaultStopWords (STOP, UNSUBSCRIBE, STOPALL, CANCEL, END, QUIT).
func NewStopWords(words ...string) StopWords {
	if len(words) == 0 {
		words = config.DefaultStopWords()
	}
	s := StopWords{words: make(map[string]string, len(words))}
	for _, w := range words {
		if f := foldWord(w); f != "" {
			s.words[f] = f
		}
	}
	return s
}

// Match reports whether text is a stop word, and which (upper-case).
func (s StopWords) Match(text string) (word string, ok bool) {
	if len(text) > 64 {
		return "", false // a sentence, not a keyword
	}
	word, ok = s.words[foldWord(text)]
	return word, ok
}

func foldWord(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			return unicode.ToUpper(r)
		default:
			return -1
		}
	}, s)
}

// ErrNoSender is an inbound stop word whose sender has no address fanout can
// read: nothing was recorded. The webhook receiver answers 2xx (OneRoute's
// retry would carry the same body) and logs it.
var ErrNoSender = errors.New("inbound stop word without a sender address")

// OptOuts turns inbound stop words into opt-outs: the webhook receiver
// calls Inbound with every event it verified.
//
//	o, err := worker.NewOptOuts(store, cfg.OptOut.StopWords, cfg.OptOut.Region)
//	err = o.Inbound(ctx, ev) // ErrNoSender: acknowledge and log
type OptOuts struct {
	store  *storage.Store
	words  StopWords
	region string
	// now is the clock; time.Now by default.
	now func() time.Time
}

// NewOptOuts returns the opt-out recorder on store. words are the stop
// words (none: config.DefaultStopWords); region reads numbers without a
// country code ("": config.DefaultOptOutRegion).
func NewOptOuts(store *storage.Store, words []string, region string) (*OptOuts, error) {
	if region == "" {
		region = config.DefaultOptOutRegion
	}
	region = strings.ToUpper(region)
	if !phonenumbers.GetSupportedRegions()[region] {
		return nil, fmt.Errorf("opt-out region %q is not a region: use a two-letter ISO 3166 code such as NG", region)
	}
	return &OptOuts{store: store, words: NewStopWords(words...), region: region, now: time.Now}, nil
}

// Inbound records the sender of an inbound newMessage event whose text is a
// stop word in the opt-out set of its channel kind, with the reason
// "stop-word:<WORD>"; from then on workers skip them in running campaigns
// (at the next claim of their batch) and the dispatcher leaves them out of
// new ones. Every other event, a message from the business side
// (sender.authUser) and any other text change nothing and return nil.
// It returns ErrNoSender when no address can be read from the event, and a
// Redis error when the opt-out could not be recorded (answer 5xx, so
// OneRoute retries).
func (o *OptOuts) Inbound(ctx context.Context, ev oneroute.Event) error {
	m, ok := ev.(*oneroute.NewMessage)
	if !ok || m.Message.Sender.AuthUser {
		return nil
	}
	word, ok := o.words.Match(m.Message.Content)
	if !ok {
		return nil
	}
	kind, addr, err := o.sender(m)
	if err != nil {
		return fmt.Errorf("%w: conversation %s: %v", ErrNoSender, m.Conversation.ID, err)
	}
	added, err := o.store.AddOptOuts(ctx, kind, "stop-word:"+word, o.now(), addr)
	if err != nil {
		return fmt.Errorf("opt out %s (%s): %w", addr, kind, err)
	}
	zerolog.Ctx(ctx).Info().Str("kind", kind).Str("address", addr).Str("word", word).Bool("new", added > 0).Msg("opted out")
	return nil
}

// Sender returns the channel kind (storage.OptOutWhatsApp or
// storage.OptOutEmail) and the normalised address of the customer who sent
// a newMessage, read as Inbound reads it.
func (o *OptOuts) Sender(m *oneroute.NewMessage) (kind, addr string, err error) {
	return o.sender(m)
}

// sender reads the channel kind and the normalised address of a newMessage.
// OneRoute's event names no medium: an email conversation has a subject and
// the customer's email; otherwise it is taken as WhatsApp, the one channel
// whose inbound messages OneRoute documents.
func (o *OptOuts) sender(m *oneroute.NewMessage) (kind, addr string, err error) {
	if m.Conversation.Subject != nil || m.Message.Subject != nil {
		addr, err := recipients.NormalizeEmail(m.Conversation.Customer.Email)
		return storage.OptOutEmail, addr, err
	}
	// A guess: OneRoute documents no phone number in newMessage. Its
	// widget reads conversation.customer_id, and the sandbox sends
	// "cust-<number>" there; take the digits after any non-digit prefix.
	id := strings.TrimLeftFunc(m.Conversation.CustomerID, func(r rune) bool { return r != '+' && (r < '0' || r > '9') })
	if id == "" {
		return storage.OptOutWhatsApp, "", errors.New("no conversation.customer_id")
	}
	addr, err = recipients.NormalizePhone(id, o.region)
	return storage.OptOutWhatsApp, addr, err
}

// skipOptedOut settles the batch's recipients that opted out (since the
// dispatch) as skipped, before the claim: the claim then finds them final
// and sends nothing to them. One read of the opt-out set per batch, and one
// script only when some opted out.
func (a *attempt) skipOptedOut(ctx context.Context) error {
	b := a.b
	addrs := make([]string, len(b.Items))
	for i, it := range b.Items {
		addrs[i] = it.To
	}
	found, err := a.s.deps.Store.OptedOut(ctx, storage.OptOutKind(b.Channel), addrs)
	if err != nil {
		return err
	}
	var rows []int
	var reasons []string
	for i, o := range found {
		if o != nil {
			rows, reasons = append(rows, b.Items[i].Row), append(reasons, storage.OptedOutReason(*o))
		}
	}
	if len(rows) == 0 {
		return nil
	}
	n, err := a.s.deps.Store.SkipOptedOut(ctx, b.Campaign, rows, reasons)
	if err != nil {
		return err
	}
	if n > 0 {
		zerolog.Ctx(ctx).Info().Int("opted_out", n).Msg("skipped recipients who opted out")
	}
	return nil
}
