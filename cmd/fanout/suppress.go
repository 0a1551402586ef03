package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
)

// cmdSuppress manages the persistent opt-out sets: the addresses no
// campaign of a channel kind sends to.
func cmdSuppress(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(e.stdout, `Usage: fanout suppress add|remove|list|import [flags]

fanout keeps one opt-out set per channel kind (sms, whatsapp, email). A
customer who replies a stop word (STOP, UNSUBSCRIBE, ...) is added by the
webhook receiver; these commands manage the sets by hand. The dispatcher
leaves opted-out addresses out of new campaigns and workers skip them in
running ones (counted suppressed, with the reason in the report).

  fanout suppress add --channel sms [--reason R] ADDRESS...
  fanout suppress remove --channel sms ADDRESS...
  fanout suppress list [--channel sms] [--json]
  fanout suppress import --channel sms [--reason R] FILE

Run 'fanout suppress <command> --help' for its flags.
`)
		if len(args) == 0 {
			return &usageError{"want add, remove, list or import"}
		}
		return nil
	}
	switch args[0] {
	case "add":
		return suppressAddRemove(ctx, e, args[1:], true)
	case "remove":
		return suppressAddRemove(ctx, e, args[1:], false)
	case "list":
		return suppressList(ctx, e, args[1:])
	case "import":
		return suppressImport(ctx, e, args[1:])
	}
	return &usageError{fmt.Sprintf("unknown suppress command %q: want add, remove, list or import", args[0])}
}

// optOutKindFlag reads --channel: sms, whatsapp or email (a campaign
// channel name such as whatsapp_template works too).
func optOutKindFlag(v string, required bool) (string, error) {
	switch v = strings.ToLower(strings.TrimSpace(v)); v {
	case "":
		if required {
			return "", &usageError{"want --channel sms, whatsapp or email"}
		}
		return "", nil
	case storage.OptOutSMS, storage.OptOutWhatsApp, storage.OptOutEmail, storage.OptOutPush:
		return v, nil
	case "whatsapp_template", "whatsapp_session", "whatsapp_campaign":
		return storage.OptOutWhatsApp, nil
	}
	return "", &usageError{fmt.Sprintf("--channel %q: want sms, whatsapp, email or push", v)}
}

// optOutNormalizer normalises addresses as the dispatcher does recipients
// of the kind.
func optOutNormalizer(kind, region string) func(string) (string, error) {
	if kind == storage.OptOutEmail {
		return recipients.NormalizeEmail
	}
	if kind == storage.OptOutPush {
		return recipients.NormalizeCustomer
	}
	return recipients.NewPhoneNormalizer(strings.ToUpper(region)).Normalize
}

func suppressAddRemove(ctx context.Context, e *env, args []string, add bool) error {
	name, verb := "suppress remove", "Removes addresses from the opt-out set of a channel kind: campaigns send to them again."
	if add {
		name, verb = "suppress add", "Adds addresses to the opt-out set of a channel kind: no campaign of that kind sends to them."
	}
	fs := newFlags(e, name, "--channel KIND [flags] ADDRESS...", verb+`
Phone numbers without a country code are read in --region; emails are
lower-cased. An address already there keeps its first reason and time.`)
	cfgFile := configFlag(fs)
	channel := fs.String("channel", "", "the channel `kind`: sms, whatsapp or email")
	region := fs.String("region", "", "`ISO code` of the country for numbers without a country code (default FANOUT_OPTOUT_REGION, NG)")
	var reason *string
	if add {
		reason = fs.String("reason", "manual", "why, kept with each address and shown in campaign reports")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	kind, err := optOutKindFlag(*channel, true)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return &usageError{"want at least one address"}
	}
	cfg, err := loadConfig(e, *cfgFile)
	if err != nil {
		return err
	}
	if *region == "" {
		*region = cfg.OptOut.Region
	}
	norm := optOutNormalizer(kind, *region)
	addrs := make([]string, len(pos))
	for i, p := range pos {
		if addrs[i], err = norm(p); err != nil {
			return &usageError{err.Error()}
		}
	}
	rdb, err := openRedis(ctx, cfg.Redis, 0)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := storage.New(rdb)
	if add {
		n, err := store.AddOptOuts(ctx, kind, *reason, time.Now(), addrs...)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%d added to the %s opt-out set, %d already there\n", n, kind, len(addrs)-n)
		return nil
	}
	n, err := store.RemoveOptOuts(ctx, kind, addrs...)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d removed from the %s opt-out set, %d were not there\n", n, kind, len(addrs)-n)
	return nil
}

// optOutEntry is one line of fanout suppress list --json. Field names are a
// contract.
type optOutEntry struct {
	Channel string    `json:"channel"`
	Address string    `json:"address"`
	At      time.Time `json:"at"`
	Reason  string    `json:"reason"`
}

func suppressList(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "suppress list", "[flags]", `
Prints every address of the opt-out sets (of one channel kind with
--channel), in no particular order: address, time (UTC) and reason, tab
separated, or one JSON object per line with --json.`)
	cfgFile := configFlag(fs)
	channel := fs.String("channel", "", "list only this channel `kind`: sms, whatsapp or email (default all)")
	asJSON := fs.Bool("json", false, "print one JSON object per address: channel, address, at, reason")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, ""); err != nil {
		return err
	}
	kind, err := optOutKindFlag(*channel, false)
	if err != nil {
		return err
	}
	kinds := storage.OptOutKinds
	if kind != "" {
		kinds = []string{kind}
	}
	_, rdb, err := openConfigRedis(ctx, e, *cfgFile)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := storage.New(rdb)
	w := bufio.NewWriter(e.stdout)
	enc := json.NewEncoder(w)
	for _, k := range kinds {
		err := store.ListOptOuts(ctx, k, func(o storage.OptOut) error {
			if *asJSON {
				return enc.Encode(optOutEntry{Channel: k, Address: o.Address, At: o.At, Reason: o.Reason})
			}
			_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k, o.Address, o.At.Format(time.RFC3339), o.Reason)
			return err
		})
		if err != nil {
			return errors.Join(err, w.Flush()) // what was listed, then the error
		}
	}
	return w.Flush() // a failed write (a full disk, a closed pipe) fails the command
}

// suppressImported is fanout suppress import's JSON output. Field names
// are a contract.
type suppressImported struct {
	Channel string `json:"channel"`
	// Lines counts the lines read, header, blank and comment lines
	// included.
	Lines int `json:"lines"`
	// Added counts new addresses; Already those already in the set.
	Added   int `json:"added"`
	Already int `json:"already"`
	// Invalid counts lines whose first column is no address of the kind;
	// Problems names the first 20 by line.
	Invalid  int      `json:"invalid"`
	Problems []string `json:"problems,omitempty"`
}

// importChunk is how many addresses one import round trip adds.
const importChunk = 1000

func suppressImport(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "suppress import", "--channel KIND [flags] FILE", `
Adds the addresses of a file to the opt-out set of a channel kind (use - for
standard input). The file is a list, one address a line, or a CSV whose
first column is the address (comma, semicolon or tab separated); a header
line, blank lines and lines starting with # are skipped. It is streamed, so
its size does not matter; progress goes to standard error every 100,000
lines. Lines that hold no valid address are counted and named by line
number (the first 20), and the rest imported.`)
	cfgFile := configFlag(fs)
	channel := fs.String("channel", "", "the channel `kind`: sms, whatsapp or email")
	region := fs.String("region", "", "`ISO code` of the country for numbers without a country code (default FANOUT_OPTOUT_REGION, NG)")
	reason := fs.String("reason", "import", "why, kept with each address and shown in campaign reports")
	asJSON := fs.Bool("json", false, "print the summary as JSON: channel, lines, added, already, invalid, problems")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	kind, err := optOutKindFlag(*channel, true)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, "one file (or -)"); err != nil {
		return err
	}
	in, name, closeIn, err := openInput(e, pos[0])
	if err != nil {
		return err
	}
	defer closeIn()
	cfg, rdb, err := openConfigRedis(ctx, e, *cfgFile)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if *region == "" {
		*region = cfg.OptOut.Region
	}
	sum, err := importOptOuts(ctx, storage.New(rdb), in, name, kind, *reason, optOutNormalizer(kind, *region), func(lines, added int) {
		fmt.Fprintf(e.stderr, "%s: %d lines read, %d added\n", name, lines, added)
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(sum)
	}
	fmt.Fprintf(e.stdout, "%d lines: %d added to the %s opt-out set, %d already there, %d invalid\n", sum.Lines, sum.Added, kind, sum.Already, sum.Invalid)
	for _, p := range sum.Problems {
		fmt.Fprintln(e.stderr, "  "+p)
	}
	return nil
}

// importOptOuts streams in into the kind's opt-out set, importChunk
// addresses per round trip, and calls progress every 100,000 lines.
func importOptOuts(ctx context.Context, store *storage.Store, in io.Reader, name, kind, reason string, norm func(string) (string, error), progress func(lines, added int)) (suppressImported, error) {
	sum := suppressImported{Channel: kind}
	now := time.Now()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := store.AddOptOuts(ctx, kind, reason, now, batch...)
		sum.Added += n
		sum.Already += len(batch) - n
		batch = batch[:0]
		return err
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		sum.Lines++
		if sum.Lines%100000 == 0 && progress != nil {
			progress(sum.Lines, sum.Added)
		}
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if i := strings.IndexAny(line, ",;\t"); i >= 0 {
			line = line[:i]
		}
		line = strings.Trim(line, `"' `)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		addr, err := norm(line)
		if err != nil {
			if sum.Lines == 1 {
				continue // a header
			}
			sum.Invalid++
			if len(sum.Problems) < 20 {
				sum.Problems = append(sum.Problems, fmt.Sprintf("%s:%d: %v", name, sum.Lines, err))
			}
			continue
		}
		batch = append(batch, addr)
		if len(batch) == importChunk {
			if err := flush(); err != nil {
				return sum, err
			}
		}
		if err := ctx.Err(); err != nil {
			return sum, err
		}
	}
	if err := sc.Err(); err != nil {
		return sum, &inputError{fmt.Errorf("%s: line %d: %w", name, sum.Lines+1, err)}
	}
	return sum, flush()
}

// openInput opens the file a command reads, or standard input for "-", and
// names it for messages. The caller defers closeIn.
func openInput(e *env, path string) (in io.Reader, name string, closeIn func(), err error) {
	if path == "-" {
		return e.stdin, "standard input", func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", nil, &inputError{err}
	}
	return f, path, func() { f.Close() }, nil
}
