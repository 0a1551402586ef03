package worker

import (
	"context"
	"errors"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// SessionSender sends WhatsApp session messages.
type SessionSender interface {
	SendSession(ctx context.Context, r oneroute.SessionRequest) (oneroute.ConversationMessage, error)
}

var _ SessionSender = (*oneroute.Client)(nil)

// SessionHandler runs whatsapp:session tasks (channel whatsapp_session).
// One read of the session windows per batch (storage.LastInbound) splits
// its recipients:
//
//   - a window open for at least Options.SessionMargin more: the session
//     message, one request per recipient, paced by the shared limiter as
//     every per-message send is;
//   - any other: the fallback template, the whole part in one request as
//     whatsapp:template sends it.
//
// Each part goes through the send path on its own (claim, stamp, send,
// record), so the ledger sends no row twice. A session message OneRoute
// refuses because the window closed after all (oneroute.ErrSessionExpired:
// the customer's window ended between the read and the send) falls back to
// the template within the same claim, once: the row's route is written
// before each send (storage.SetRoute) and never goes back from template to
// session, so no later attempt tries the session message again.
type SessionHandler struct{ b *batchSender }

// ProcessTask implements asynq.Handler.
func (h *SessionHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var b campaigns.Batch
	if err := tasks.Decode(t.Payload(), &b); err != nil {
		return skip(err)
	}
	if _, ok := h.b.deps.Provider.(SessionSender); !ok {
		return skip(errors.New("the provider cannot send WhatsApp session messages"))
	}
	w, err := h.b.window(ctx, &b)
	if w == nil {
		return err // outside the send window: the whole batch waits
	}
	open, closed, err := h.split(ctx, w)
	if err != nil {
		return err
	}
	zerolog.Ctx(ctx).Debug().Int("session", len(open.Items)).Int("template", len(closed.Items)).Msg("session windows read")
	var errs [2]error
	if len(closed.Items) > 0 {
		errs[0] = h.b.process(ctx, closed, h.templates)
	}
	if len(open.Items) > 0 {
		errs[1] = h.b.process(ctx, open, h.sessions)
	}
	if errs[0] != nil {
		return errs[0]
	}
	return errs[1]
}

// split reads the batch's session windows and routes, and returns the part
// to send session messages and the part to send the template.
func (h *SessionHandler) split(ctx context.Context, b *campaigns.Batch) (open, closed *campaigns.Batch, err error) {
	rows := make([]int, len(b.Items))
	tos := make([]string, len(b.Items))
	for i, it := range b.Items {
		rows[i], tos[i] = it.Row, it.To
	}
	store := h.b.deps.Store
	routes, err := store.Routes(ctx, b.Campaign, rows)
	if err != nil {
		return nil, nil, err
	}
	now := h.b.opts.NowFunc()
	last, err := store.LastInbound(ctx, b.From, tos, now)
	if err != nil {
		return nil, nil, err
	}
	o, c := *b, *b
	o.Items, c.Items = nil, nil
	for i, it := range b.Items {
		if routes[i] != campaigns.RouteTemplate && SessionOpen(last[i], now, h.b.opts.SessionMargin) {
			o.Items = append(o.Items, it)
		} else {
			c.Items = append(c.Items, it)
		}
	}
	return &o, &c, nil
}

// SessionOpen reports whether a customer who last wrote at last (zero:
// not within the window) may get a session message at now: at least
// margin of the 24-hour window is left.
func SessionOpen(last, now time.Time, margin time.Duration) bool {
	return !last.IsZero() && last.Add(storage.SessionWindow).Sub(now) >= margin
}

// sessions sends the open part: one session message per recipient.
func (h *SessionHandler) sessions(b *campaigns.Batch) channel {
	return channel{eachFunc: func(ctx context.Context, it campaigns.Item) ([]oneroute.Result, error) {
		return h.sendSession(ctx, b, it)
	}}
}

// sendSession sends one recipient's session message, or the template when
// the window turns out closed.
func (h *SessionHandler) sendSession(ctx context.Context, b *campaigns.Batch, it campaigns.Item) ([]oneroute.Result, error) {
	store := h.b.deps.Store
	route, err := store.SetRoute(ctx, b.Campaign, it.Row, campaigns.RouteSession)
	if err != nil {
		return nil, notSent(err)
	}
	if route == campaigns.RouteTemplate {
		// An earlier attempt fell back already.
		return h.fallback(ctx, b, it)
	}
	req := oneroute.SessionRequest{From: b.From, To: it.To, Message: b.ContentOf(it).Text}
	if b.MediaURL != "" {
		req.Attachment = &oneroute.Attachment{Type: AttachmentType(b.MediaURL), URL: b.MediaURL}
	}
	msg, err := h.b.deps.Provider.(SessionSender).SendSession(ctx, req)
	if errors.Is(err, oneroute.ErrSessionExpired) {
		zerolog.Ctx(ctx).Debug().Int("row", it.Row).Msg("session window closed; sending the template")
		if _, err := store.SetRoute(ctx, b.Campaign, it.Row, campaigns.RouteTemplate); err != nil {
			return nil, notSent(err)
		}
		return h.fallback(ctx, b, it)
	}
	if err != nil {
		return nil, err
	}
	h.count(ctx, b, []storage.RouteCount{{Row: it.Row, Route: campaigns.RouteSession}})
	return []oneroute.Result{{Status: "success", Response: msg.ID}}, nil
}

// fallback sends one recipient the template.
func (h *SessionHandler) fallback(ctx context.Context, b *campaigns.Batch, it campaigns.Item) ([]oneroute.Result, error) {
	return h.sendTemplates(ctx, b, []campaigns.Item{it})
}

// templates sends the closed part: the template, in one request.
func (h *SessionHandler) templates(b *campaigns.Batch) channel {
	return channel{batchFunc: func(ctx context.Context, items []campaigns.Item) ([]oneroute.Result, error) {
		rows := make([]int, len(items))
		for i, it := range items {
			rows[i] = it.Row
		}
		if err := h.b.deps.Store.SetRoutes(ctx, b.Campaign, rows, campaigns.RouteTemplate); err != nil {
			return nil, notSent(err)
		}
		return h.sendTemplates(ctx, b, items)
	}}
}

// sendTemplates sends items the fallback template, each message with its
// row's identifier as whatsapp:template does, and counts those accepted.
func (h *SessionHandler) sendTemplates(ctx context.Context, b *campaigns.Batch, items []campaigns.Item) ([]oneroute.Result, error) {
	req := oneroute.TemplateRequest{From: b.From, Messages: make([]oneroute.TemplateMessage, len(items))}
	for i, it := range items {
		ident := campaigns.Identifier(b.Campaign, it.Row)
		req.Messages[i] = oneroute.TemplateMessage{
			To:         it.To,
			Save:       true,
			Template:   templateRef(b, b.ContentOf(it)),
			Metadata:   map[string]any{"identifier": ident},
			Identifier: ident,
		}
	}
	res, err := h.b.deps.Provider.SendTemplate(ctx, req)
	if err == nil && len(res) == len(items) {
		var counts []storage.RouteCount
		for i, r := range res {
			if r.Accepted() {
				counts = append(counts, storage.RouteCount{Row: items[i].Row, Route: campaigns.RouteTemplate}) //nolint:gosec // G602: len(res) == len(items) above
			}
		}
		h.count(ctx, b, counts)
	}
	return res, err
}

// count adds accepted rows to the campaign's route counters. A failure
// loses only the count: the messages were sent, and must be recorded so.
func (h *SessionHandler) count(ctx context.Context, b *campaigns.Batch, rs []storage.RouteCount) {
	if _, err := h.b.deps.Store.CountRoutes(context.WithoutCancel(ctx), b.Campaign, rs); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("count session routes")
	}
}

// notSent is a failure before any request: nothing was sent, so the row
// is retried like a temporary failure.
func notSent(err error) error {
	return &oneroute.TransportError{Op: "route whatsapp session", Err: err}
}

// AttachmentType is the session message attachment type of a media URL,
// by its file extension: VIDEO, DOCUMENT, AUDIO, else IMAGE.
func AttachmentType(rawURL string) string {
	p := rawURL
	if u, err := url.Parse(rawURL); err == nil {
		p = u.Path
	}
	switch strings.ToLower(path.Ext(p)) {
	case ".mp4", ".3gp", ".mov":
		return "VIDEO"
	case ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".txt", ".csv":
		return "DOCUMENT"
	case ".mp3", ".ogg", ".opus", ".aac", ".amr", ".m4a":
		return "AUDIO"
	default:
		return "IMAGE"
	}
}
