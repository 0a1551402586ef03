package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
)

// reportLine is one recipient of fanout report. JSON names (and the CSV
// header, in this order) are a contract with scripts.
type reportLine struct {
	Row        int    `json:"row"`
	To         string `json:"to"`
	State      string `json:"state"`
	ProviderID string `json:"provider_id"`
	Reason     string `json:"reason"`
	Retries    int    `json:"retries"`
	// The ledger keeps no time per recipient: these are the campaign's.
	StartedAt  string `json:"started_at"`
	SentAt     string `json:"sent_at"`
	FinishedAt string `json:"finished_at"`
	// Route is how a whatsapp_session recipient went: "session" or
	// "template" (only in that channel's reports, as a last CSV column).
	Route string `json:"route,omitempty"`
}

var reportHeader = []string{"row", "to", "state", "provider_id", "reason", "retries", "started_at", "sent_at", "finished_at"}

func cmdReport(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "report", "[flags] CAMPAIGN-ID", `
Writes one line per recipient of a campaign, in row order, each once: its
row in the recipient file, address, final state (sent, delivered,
undelivered, read, dlr_expired, failed, unknown, skipped; claimed or
sending while the campaign runs), OneRoute's message id, the reason of a
failure or skip, how many times retry-failed sent it again, and the
campaign's started_at, sent_at and finished_at (RFC 3339; the ledger keeps
no time per recipient). Recipients not sent yet (pending) are not listed.
A whatsapp_session campaign's lines end with route: session or template.

The address comes from --recipients (the campaign's recipient file, read
along in one pass and normalised as dispatch did); without it only failed
recipients have one. CSV cells that a spreadsheet would run as a formula
(starting with = + - @, tab, CR) are prefixed with '. Memory stays bounded:
the ledger is read 100 rows at a time.`)
	cfgFile := configFlag(fs)
	format := fs.String("format", "csv", "csv or ndjson")
	out := fs.String("out", "", "write to this `file` instead of standard output")
	recFile := fs.String("recipients", "", "the campaign's recipient `file`, for every recipient's address")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, "one campaign id"); err != nil {
		return err
	}
	if *format != "csv" && *format != "ndjson" {
		return &usageError{fmt.Sprintf("--format %q: want csv or ndjson", *format)}
	}
	cfg, rdb, err := openConfigRedis(ctx, e, *cfgFile)
	if err != nil {
		return err
	}
	defer rdb.Close()
	id, store := pos[0], storage.New(rdb)
	notFound := func() error {
		return &inputError{fmt.Errorf("no campaign %q in Redis at %s", id, redisWhere(cfg.Redis))}
	}
	p, err := store.Progress(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound()
	}
	if err != nil {
		return err
	}
	var addrs *addressReader
	if *recFile != "" {
		spec, err := store.Spec(ctx, id)
		if err != nil {
			return err
		}
		if addrs, err = openAddresses(spec, *recFile); err != nil {
			return &inputError{err}
		}
		defer addrs.Close()
	}
	w := e.stdout
	var f *os.File
	if *out != "" {
		if f, err = os.OpenFile(*out, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600); err != nil { // recipients' personal data: owner-only
			return &inputError{err}
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	rw := newReportWriter(bw, *format)
	routes := p.Channel == campaigns.ChannelWhatsAppSession
	if routes && rw.csv != nil {
		rw.route = true
	}
	stamp := func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	started, sent, finished := stamp(p.StartedAt), stamp(p.SentAt), stamp(p.FinishedAt)
	n := 0
	err = store.Report(ctx, id, func(rows []storage.ReportRow) error {
		var rr []string
		if routes {
			if rr, err = reportRoutes(ctx, store, id, rows); err != nil {
				return err
			}
		}
		for i, r := range rows {
			l := reportLine{Row: r.Row, To: r.To, State: r.State, ProviderID: r.ProviderID, Reason: r.Reason, Retries: r.Retries,
				StartedAt: started, SentAt: sent, FinishedAt: finished}
			if rr != nil {
				l.Route = rr[i]
			}
			if addrs != nil {
				a, err := addrs.at(r.Row)
				if err != nil {
					return err
				}
				if a != "" {
					l.To = a
				}
			}
			if err := rw.write(l); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return notFound()
	}
	if err != nil {
		return err
	}
	if err := rw.flush(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "wrote %d recipients of campaign %s to %s\n", n, id, *out)
	}
	if p.Pending > 0 {
		fmt.Fprintf(e.stderr, "campaign %s is %s: %d recipients not sent yet are not listed\n", id, p.State, p.Pending)
	}
	return nil
}

// reportWriter writes report lines as CSV (with a header) or NDJSON.
type reportWriter struct {
	csv *csv.Writer
	js  *json.Encoder
	// route adds the route column (whatsapp_session), after the header is
	// due: the header is written with the first line.
	route  bool
	header bool
}

func newReportWriter(w io.Writer, format string) *reportWriter {
	if format == "ndjson" {
		return &reportWriter{js: json.NewEncoder(w)}
	}
	return &reportWriter{csv: csv.NewWriter(w)}
}

func (r *reportWriter) writeHeader() {
	if r.header {
		return
	}
	r.header = true
	if r.route {
		r.csv.Write(append(slices.Clone(reportHeader), "route"))
		return
	}
	r.csv.Write(reportHeader)
}

func (r *reportWriter) write(l reportLine) error {
	if r.js != nil {
		return r.js.Encode(l)
	}
	r.writeHeader()
	esc := recipients.EscapeCell
	rec := []string{strconv.Itoa(l.Row), esc(l.To), esc(l.State), esc(l.ProviderID), esc(l.Reason),
		strconv.Itoa(l.Retries), l.StartedAt, l.SentAt, l.FinishedAt}
	if r.route {
		rec = append(rec, l.Route)
	}
	return r.csv.Write(rec)
}

// reportRoutes reads the routes of a page of a whatsapp_session report:
// "session", "template" or "" (not sent yet).
func reportRoutes(ctx context.Context, store *storage.Store, id string, rows []storage.ReportRow) ([]string, error) {
	nums := make([]int, len(rows))
	for i, r := range rows {
		nums[i] = r.Row
	}
	rs, err := store.Routes(ctx, id, nums)
	if err != nil {
		return nil, err
	}
	for i, r := range rs {
		switch r {
		case campaigns.RouteSession:
			rs[i] = "session"
		case campaigns.RouteTemplate:
			rs[i] = "template"
		}
	}
	return rs, nil
}

func (r *reportWriter) flush() error {
	if r.csv != nil {
		r.writeHeader()
		r.csv.Flush()
		return r.csv.Error()
	}
	return nil
}

// addressReader reads a campaign's recipient file along with the report,
// both in row order, so the addresses never sit in memory together.
type addressReader struct {
	src   recipients.Source
	spec  campaigns.Spec
	field string
	last  recipients.Row
	done  bool
}

func openAddresses(spec campaigns.Spec, path string) (*addressReader, error) {
	src, err := recipients.OpenSource(path, recipients.OptionsOf(spec))
	if err != nil {
		return nil, err
	}
	field, err := recipients.AddressField(spec, src.Columns())
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &addressReader{src: src, spec: spec, field: field}, nil
}

// at returns the normalised address of row n ("" when the file has no
// such row or its address does not normalise). Rows must be asked for in
// increasing order.
func (a *addressReader) at(n int) (string, error) {
	for !a.done && a.last.N < n {
		row, err := a.src.Next()
		if errors.Is(err, io.EOF) {
			a.done = true
			break
		}
		if err != nil {
			return "", err
		}
		a.last = recipients.Row{N: row.N}
		if row.Err == nil {
			a.last.Fields = map[string]string{a.field: row.Fields[a.field]}
		}
	}
	if a.last.N != n || a.last.Fields == nil {
		return "", nil
	}
	addr, err := recipients.Normalize(a.spec, a.last.Fields[a.field])
	if err != nil {
		return "", nil
	}
	return addr, nil
}

func (a *addressReader) Close() error { return a.src.Close() }
