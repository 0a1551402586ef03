package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
)

// cmdSessions manages the WhatsApp session windows fanout knows: when each
// customer last wrote to a business number.
func cmdSessions(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(e.stdout, `Usage: fanout sessions import|check [flags]

WhatsApp allows free-form session messages to a customer for 24 hours after
the customer last wrote to the business number; outside that window only
templates. fanout learns the last inbound time of each customer from
OneRoute's newMessage webhooks ('fanout webhooks'); these commands seed and
inspect it:

  fanout sessions import --from +2348090000001 FILE
      read a CSV export of inbound messages (columns: phone, and
      last_inbound_at as RFC 3339 or Unix seconds; optional column from for
      the business number) and record the ones still inside the window
  fanout sessions check --from +2348090000001 NUMBER...
      say whose window is open, and until when

Run 'fanout sessions <command> --help' for its flags.
`)
		if len(args) == 0 {
			return &usageError{"want import or check"}
		}
		return nil
	}
	switch args[0] {
	case "import":
		return sessionsImport(ctx, e, args[1:])
	case "check":
		return sessionsCheck(ctx, e, args[1:])
	}
	return &usageError{fmt.Sprintf("unknown sessions command %q: want import or check", args[0])}
}

// sessionsImported is fanout sessions import's JSON output. Field names are
// a contract.
type sessionsImported struct {
	Rows     int `json:"rows"`
	Recorded int `json:"recorded"`
	// Closed counts rows whose window had already closed: nothing to record.
	Closed int `json:"closed"`
	// Invalid counts rows refused; Problems names the first 20 by line.
	Invalid  int      `json:"invalid"`
	Problems []string `json:"problems,omitempty"`
}

func sessionsImport(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "sessions import", "[flags] FILE", `
Records the last inbound message time of customers from a CSV file with a
header row (use - for standard input):

  phone,last_inbound_at[,from]
  +2348031234567,2026-12-02T09:15:00+01:00
  08031234568,1764667200

The phone column may also be called number, customer or to; the time column
at, time or timestamp (RFC 3339, or Unix seconds). A from column gives each
row's business number; otherwise --from does. Rows older than 24 hours open
no window and are counted as closed; a newer time already known is kept.
Bad rows are refused one by one, named by line, and the rest imported.`)
	cfgFile := configFlag(fs)
	from := fs.String("from", "", "the business WhatsApp `number` the customers wrote to (unless the file has a from column)")
	region := fs.String("region", "NG", "`ISO code` of the country for numbers without a country code")
	asJSON := fs.Bool("json", false, "print the summary as JSON: rows, recorded, closed, invalid, problems")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, "one CSV file (or -)"); err != nil {
		return err
	}
	in, name, closeIn, err := openInput(e, pos[0])
	if err != nil {
		return err
	}
	defer closeIn()
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		return &inputError{fmt.Errorf("%s: no header row: %v", name, err)}
	}
	col := map[string]int{}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		for _, c := range []struct{ name, is string }{
			{"phone", "phone"}, {"number", "phone"}, {"customer", "phone"}, {"to", "phone"},
			{"last_inbound_at", "at"}, {"at", "at"}, {"time", "at"}, {"timestamp", "at"}, {"from", "from"}, {"business", "from"},
		} {
			if _, dup := col[c.is]; h == c.name && !dup {
				col[c.is] = i
			}
		}
	}
	_, hasPhone := col["phone"]
	_, hasAt := col["at"]
	_, hasFrom := col["from"]
	switch {
	case !hasPhone || !hasAt:
		return &inputError{fmt.Errorf("%s:1: the header %q lacks a phone column and a last_inbound_at column", name, strings.Join(head, ","))}
	case !hasFrom && *from == "":
		return &usageError{"want --from, the business number, or a from column in the file"}
	}
	if *from != "" {
		if *from, err = recipients.NormalizePhone(*from, strings.ToUpper(*region)); err != nil {
			return &usageError{fmt.Sprintf("--from: %v", err)}
		}
	}
	_, rdb, err := openConfigRedis(ctx, e, *cfgFile)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := storage.New(rdb)
	now := time.Now()
	var sum sessionsImported
	var batch []storage.Inbound
	flush := func() error {
		n, err := store.RecordInbound(ctx, now, batch...)
		sum.Recorded += n
		sum.Closed += len(batch) - n
		batch = batch[:0]
		return err
	}
	bad := func(line int, format string, a ...any) {
		sum.Invalid++
		if len(sum.Problems) < 20 {
			sum.Problems = append(sum.Problems, fmt.Sprintf("%s:%d: ", name, line)+fmt.Sprintf(format, a...))
		}
	}
	field := func(rec []string, k string) string {
		if i, ok := col[k]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad(pe.Line, "%v", pe.Err)
				continue
			}
			return &inputError{fmt.Errorf("%s: %v", name, err)}
		}
		sum.Rows++
		phone, err := recipients.NormalizePhone(field(rec, "phone"), strings.ToUpper(*region))
		if err != nil {
			bad(line, "%v", err)
			continue
		}
		biz := *from
		if v := field(rec, "from"); v != "" {
			if biz, err = recipients.NormalizePhone(v, strings.ToUpper(*region)); err != nil {
				bad(line, "from: %v", err)
				continue
			}
		}
		at, err := parseInboundTime(field(rec, "at"))
		if err != nil {
			bad(line, "%v", err)
			continue
		}
		batch = append(batch, storage.Inbound{Business: biz, Customer: phone, At: at})
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(sum)
	}
	fmt.Fprintf(e.stdout, "%d rows: %d windows recorded, %d already closed, %d refused\n", sum.Rows, sum.Recorded, sum.Closed, sum.Invalid)
	for _, p := range sum.Problems {
		fmt.Fprintln(e.stderr, "  "+p)
	}
	return nil
}

// parseInboundTime reads RFC 3339 or Unix seconds.
func parseInboundTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("no last_inbound_at time")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-12-02T09:15:00+01:00) or Unix seconds", s)
	}
	return t, nil
}

// sessionWindow is one line of fanout sessions check --json.
type sessionWindow struct {
	Phone string `json:"phone"`
	Open  bool   `json:"open"`
	// LastInboundAt and ClosesAt are set when the window is open.
	LastInboundAt *time.Time `json:"last_inbound_at,omitempty"`
	ClosesAt      *time.Time `json:"closes_at,omitempty"`
}

func sessionsCheck(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "sessions check", "[flags] NUMBER...", `
Says, for each number, whether its WhatsApp session window with the business
number is open now, and until when.`)
	cfgFile := configFlag(fs)
	from := fs.String("from", "", "the business WhatsApp `number`")
	region := fs.String("region", "NG", "`ISO code` of the country for numbers without a country code")
	asJSON := fs.Bool("json", false, "print one JSON object per number: phone, open, last_inbound_at, closes_at")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || *from == "" {
		return &usageError{"want --from and at least one number"}
	}
	biz, err := recipients.NormalizePhone(*from, strings.ToUpper(*region))
	if err != nil {
		return &usageError{fmt.Sprintf("--from: %v", err)}
	}
	phones := make([]string, len(pos))
	for i, p := range pos {
		if phones[i], err = recipients.NormalizePhone(p, strings.ToUpper(*region)); err != nil {
			return &usageError{err.Error()}
		}
	}
	_, rdb, err := openConfigRedis(ctx, e, *cfgFile)
	if err != nil {
		return err
	}
	defer rdb.Close()
	now := time.Now()
	last, err := storage.New(rdb).LastInbound(ctx, biz, phones, now)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(e.stdout)
	for i, p := range phones {
		w := sessionWindow{Phone: p, Open: !last[i].IsZero()}
		if w.Open {
			at, closes := last[i].UTC(), last[i].Add(storage.SessionWindow).UTC()
			w.LastInboundAt, w.ClosesAt = &at, &closes
		}
		switch {
		case *asJSON:
			if err := enc.Encode(w); err != nil {
				return err
			}
		case w.Open:
			fmt.Fprintf(e.stdout, "%s  open until %s (in %s)\n", p, w.ClosesAt.Format(time.RFC3339), shortDuration(w.ClosesAt.Sub(now)))
		default:
			fmt.Fprintf(e.stdout, "%s  closed: templates only\n", p)
		}
	}
	return nil
}
