package monitor

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

type pages struct {
	list, campaign *template.Template
}

func loadPages() *pages {
	funcs := template.FuncMap{
		"pct":      pct,
		"duration": humanDuration,
		"rate":     func(r float64) string { return strconv.FormatFloat(r, 'f', 1, 64) },
		"time":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"limits":   limitsText,
		"refresh":  refreshAttr,
	}
	parse := func(name string) *template.Template {
		return template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name))
	}
	return &pages{list: parse("list.html"), campaign: parse("campaign.html")}
}

// segment is one part of a progress bar.
type segment struct {
	Name  string  // sent, delivered, failed, unknown, skipped, remaining
	Count int64   //
	Pct   float64 // of the total
}

// row is a campaign as the pages show it.
type row struct {
	campaigns.Progress
	Bar    []segment
	ETA    string
	Limits campaigns.Rate
	Own    bool // the campaign sets its own rate
	Window string
}

// bar splits a campaign's total into the states the dashboard colours:
// delivered, sent (accepted, no final report yet or no reports),
// undelivered, failed, unknown, skipped and remaining.
func bar(p campaigns.Progress) []segment {
	sentOnly := p.Sent - p.Delivered - p.Undelivered
	if sentOnly < 0 {
		sentOnly = 0
	}
	parts := []segment{
		{"delivered", p.Delivered, 0}, {"sent", sentOnly, 0}, {"undelivered", p.Undelivered, 0},
		{"failed", p.Failed, 0}, {"unknown", p.Unknown, 0}, {"skipped", p.Skipped, 0}, {"remaining", max(p.Pending, 0), 0},
	}
	var total int64
	for _, s := range parts {
		total += s.Count
	}
	out := parts[:0]
	for _, s := range parts {
		if total > 0 {
			s.Pct = 100 * float64(s.Count) / float64(total)
		}
		out = append(out, s)
	}
	return out
}

func (s *Server) rowOf(r *http.Request, p campaigns.Progress, withSpec bool) row {
	rw := row{Progress: p, Bar: bar(p), Limits: s.o.DefaultRate}
	if p.ETA != nil {
		rw.ETA = humanDuration(time.Duration(*p.ETA * float64(time.Second)))
	}
	if !withSpec {
		return rw
	}
	if spec, err := s.o.Store.Spec(r.Context(), p.ID); err == nil {
		rw.Limits, rw.Own = spec.Rate.Over(s.o.DefaultRate), spec.Rate != nil
		if t := spec.Expiry(); t > 0 {
			rw.Window = "until " + time.Unix(t, 0).UTC().Format("2006-01-02 15:04 UTC")
		}
	}
	return rw
}

// listData is the list page.
type listData struct {
	Title      string
	Refresh    int
	RefreshURL string
	Rows       []row
	Page       int
	Prev       int
	Next       int
	Total      int
	Error      string
	Operator   bool
}

// GET /: the campaigns, newest first, PageSize a page (?page=2 ...). It
// reads each shown campaign's counters and nothing per recipient.
func (s *Server) listPage(w http.ResponseWriter, r *http.Request) {
	page := 1
	if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && v > 1 {
		page = v
	}
	d := listData{Title: "Campaigns", Refresh: int(s.o.Refresh.Seconds()), Page: page, Operator: roleFrom(r) == RoleOperator}
	ids, err := s.o.Store.List(r.Context(), page*s.o.PageSize+1)
	if err != nil {
		d.Error = err.Error()
	}
	from := (page - 1) * s.o.PageSize
	if from < len(ids) {
		shown := ids[from:]
		if len(shown) > s.o.PageSize {
			shown, d.Next = shown[:s.o.PageSize], page+1
		}
		ps, err := s.progressOf(r.Context(), shown)
		if err != nil {
			d.Error = err.Error()
		}
		for _, p := range ps {
			d.Rows = append(d.Rows, s.rowOf(r, p, true))
		}
	}
	if page > 1 {
		d.Prev = page - 1
	}
	s.render(w, s.pages.list, d)
}

// reason is a failure reason and how many recipients it stopped.
type reason struct {
	Text  string
	Count int64
}

// campaignData is the per-campaign page.
type campaignData struct {
	Title      string
	Refresh    int
	RefreshURL string // the page without the notice of a button
	Row        row
	Chart      template.HTML
	Reasons    []reason
	More       int
	Operator   bool
	Notice     string
	Error      string
}

// GET /campaigns/{id}: counters, a chart of them over time, the most
// frequent failure reasons and the control buttons. It reads the
// campaign's counters, reasons and spec, never a ledger.
func (s *Server) campaignPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p, err := s.o.Store.Progress(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		http.Error(w, fmt.Sprintf("no campaign %q; see the list at /", id), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.o.History.Add(p, time.Now())
	d := campaignData{Title: "Campaign " + id, Refresh: int(s.o.Refresh.Seconds()), Row: s.rowOf(r, p, true),
		Operator: roleFrom(r) == RoleOperator, Notice: r.URL.Query().Get("done"), Error: r.URL.Query().Get("error"),
		RefreshURL: "/campaigns/" + url.PathEscape(id)}
	if p.Final() {
		d.Refresh = 0
	}
	d.Chart = chart(s.o.History.Points(id))
	for k, v := range p.FailureReasons {
		d.Reasons = append(d.Reasons, reason{k, v})
	}
	sort.Slice(d.Reasons, func(i, j int) bool {
		a, b := d.Reasons[i], d.Reasons[j]
		return a.Count > b.Count || (a.Count == b.Count && a.Text < b.Text)
	})
	if len(d.Reasons) > 10 {
		d.More, d.Reasons = len(d.Reasons)-10, d.Reasons[:10]
	}
	s.render(w, s.pages.campaign, d)
}

// POST /campaigns/{id}/{action}: the dashboard's buttons; back to the
// campaign's page with what happened.
func (s *Server) controlForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
	id := r.PathValue("id")
	action := r.PathValue("action")
	q := url.Values{}
	if code, msg := s.control(r, id, action, r.PostFormValue("reason")); code != http.StatusOK {
		if code == http.StatusNotFound {
			http.Error(w, msg, code)
			return
		}
		q.Set("error", msg)
	} else {
		q.Set("done", map[string]string{"pause": "Paused.", "resume": "Resumed.", "cancel": "Cancelled."}[action])
	}
	http.Redirect(w, r, "/campaigns/"+url.PathEscape(id)+"?"+q.Encode(), http.StatusSeeOther)
}

// render executes a page into memory first, so a template error is a 500
// with the reason rather than half a page.
func (s *Server) render(w http.ResponseWriter, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		s.o.Logger.Error().Err(err).Msg("render a monitor page")
		http.Error(w, "render the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
	w.Write(buf.Bytes())
}

// refreshAttr is the content attribute of the refresh meta tag: every secs
// seconds, to path when set (the page without a button's notice).
func refreshAttr(secs int, path string) template.HTMLAttr {
	v := strconv.Itoa(secs)
	if path != "" {
		v += "; url=" + path
	}
	return template.HTMLAttr(`content="` + html.EscapeString(v) + `"`) //nolint:gosec // G203: v is escaped
}

func pct(n, total int64) string {
	if total <= 0 {
		return "0%"
	}
	return strconv.FormatFloat(100*float64(n)/float64(total), 'f', 0, 64) + "%"
}

// humanDuration writes 3h12m, 4m05s, 12s.
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}

// limitsText writes a rate as "20/s, 1000/min, burst 20", or "none".
func limitsText(r campaigns.Rate) string {
	s := ""
	add := func(n int, unit string) {
		if n <= 0 {
			return
		}
		if s != "" {
			s += ", "
		}
		s += strconv.Itoa(n) + unit
	}
	add(r.PerSecond, "/s")
	add(r.PerMinute, "/min")
	add(r.PerDay, "/day")
	add(r.Burst, " burst")
	if s == "" {
		return "none"
	}
	return s
}
