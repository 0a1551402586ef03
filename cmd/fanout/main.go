// Command fanout sends campaigns through OneRoute: it expands recipient files
// into Redis-backed asynq jobs, runs workers that send them within shared
// rate limits without ever sending twice, and reports per-campaign progress.
//
// Run "fanout help" for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, documented in docs/cli.md.
const (
	exitOK       = 0
	exitError    = 1 // runtime failure: Redis unreachable, OneRoute down, ...
	exitBadInput = 2 // bad usage, spec, recipient file or configuration
	// A second SIGINT or SIGTERM exits at once with 128 + the signal's
	// number: 130 or 143 (see notifyContext).
)

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// usageError is a mistake in the command line (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// inputError wraps errors in the user's files or settings (exit 2).
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what commands get from main: streams and the environment.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	getenv         func(string) string
}

func commands() []command {
	return []command{
		{"run", "run a campaign end to end in one process (embedded Redis and sandbox with --sandbox)", cmdRun},
		{"dispatch", "expand a campaign's recipients into Redis and print the campaign id", cmdDispatch},
		{"worker", "run a long-lived worker that sends queued campaigns", cmdWorker},
		{"status", "show a campaign's progress counters", cmdStatus},
		{"list", "list campaigns, newest first", cmdList},
		{"pause", "pause a campaign fleet-wide", controlCommand("pause")},
		{"resume", "resume a paused campaign", controlCommand("resume")},
		{"cancel", "cancel a campaign: what is not sent is skipped", controlCommand("cancel")},
		{"monitor", "serve the campaign dashboard, the Asynq UI, the JSON API and metrics", cmdMonitor},
		{"sandbox", "serve the fake OneRoute API for tests and demos", cmdSandbox},
		{"otp", "send and verify one-time passwords (OneOTP, OTP SMS)", cmdOTP},
		{"sessions", "seed and check WhatsApp session windows (customers' last inbound time)", cmdSessions},
		{"channels", "list the OneRoute channels a spec can name (channel_id, from)", cmdChannels},
		{"templates", "list a WhatsApp channel's templates: name, language, parameters, approval", cmdTemplates},
		{"retry-failed", "send again the recipients that failed for a temporary reason (or --reason)", cmdRetryFailed},
		{"report", "write every recipient's final state, message id and reason (CSV or NDJSON)", cmdReport},
		{"wait", "block until a campaign is over; the exit code says how it ended", cmdWait},
		{"suppress", "manage the opt-out sets (STOP replies): add, remove, list, import", cmdSuppress},
		{"webhooks", "receive OneRoute's signed webhook events and apply them (delivery reports, statuses)", cmdWebhooks},
		{"version", "print the version", cmdVersion},
		{"healthcheck", "exit 0 when a health endpoint answers 200 (for container healthchecks)", cmdHealthcheck},
	}
}

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, stop := notifyContext(context.Background(), sigs, os.Exit, os.Stderr)
	defer stop()
	// go-redis prints pool dial failures on its own; fanout reports them
	// once, with the fix, instead.
	redis.SetLogger(quietRedis{})
	setLogDurations()
	e := &env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.Getenv}
	os.Exit(runMain(ctx, e, os.Args[1:]))
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func runMain(ctx context.Context, e *env, args []string) int {
	if _, ok := e.stderr.(*os.File); !ok {
		// The logs of in-process workers (fanout run) and the progress
		// drawn by the command share stderr: a file takes concurrent
		// writes, an in-memory writer (tests, embedding) does not.
		if _, locked := e.stderr.(*lockedWriter); !locked {
			e.stderr = &lockedWriter{w: e.stderr}
		}
	}
	if len(args) == 0 {
		usage(e.stderr)
		return exitBadInput
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 2 {
			fmt.Fprintf(e.stderr, "fanout help: unexpected argument %q: want one command\nRun 'fanout help' for the commands.\n", args[2])
			return exitBadInput
		}
		if len(args) > 1 {
			return runMain(ctx, e, []string{args[1], "--help"})
		}
		usage(e.stdout)
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, e, args[1:])
			return report(e.stderr, c.name, err)
		}
	}
	fmt.Fprintf(e.stderr, "fanout: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitBadInput
}

func report(w io.Writer, name string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue *usageError
	var ie *inputError
	var oe *otpRefusedError
	var xe *exitCodeError
	switch {
	case errors.As(err, &oe):
		return exitOTPRefused // the refusal was printed on stdout
	case errors.As(err, &xe):
		if xe.msg != "" {
			fmt.Fprintln(w, xe.msg)
		}
		return xe.code
	case errors.As(err, &ue):
		fmt.Fprintf(w, "fanout %s: %s\nRun 'fanout %s --help' for usage.\n", name, ue.msg, name)
		return exitBadInput
	case errors.As(err, &ie):
		fmt.Fprintf(w, "fanout %s: %s\n", name, indentLines(ie.Error()))
		return exitBadInput
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(w, "fanout %s: interrupted\n", name)
		return exitError
	default:
		fmt.Fprintf(w, "fanout %s: %s\n", name, err)
		return exitError
	}
}

// indentLines lays out a multi-line error below "fanout cmd: ": a first
// line ending in ":" is a heading kept on that line ("configuration:"),
// and the lines of the list are indented below it.
func indentLines(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	head := ""
	if first, rest, _ := strings.Cut(s, "\n"); strings.HasSuffix(first, ":") {
		head, s = first, rest
	}
	return head + "\n  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func usage(w io.Writer) {
	fmt.Fprint(w, `fanout sends campaigns (SMS, WhatsApp templates, email) through OneRoute.

Usage:
  fanout <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Try it with no setup:
  fanout run --sandbox examples/sms.yaml

Settings come from the environment (or --config FILE):
  REDIS_URL           redis://host:port/db or rediss://... (default redis://127.0.0.1:6379/0)
  ONEROUTE_API_KEY    your OneRoute key (or ONEROUTE_API_KEY_FILE); required by dispatch and worker
  ONEROUTE_BASE_URL   default https://api.oneroute.io
  LOG_LEVEL           trace, debug, info, warn, error (default info)
  LOG_FORMAT          json or console (default console on a terminal)
See docs/configuration.md for the rest.

Run 'fanout <command> --help' for a command's flags.
`)
}

// newFlags returns a flag set whose usage prints the command's synopsis and
// description, then its flags, on standard output (help was asked for).
// Mistakes are reported by parse, in one line on standard error.
func newFlags(e *env, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "Usage: %s\n\n%s\n", strings.TrimSpace("fanout "+name+" "+synopsis), strings.TrimSpace(description))
		printFlags(e.stdout, fs)
	}
	return fs
}

// printFlags prints a flag set GNU-style: "--name placeholder", then its
// usage, with the default shown once: appended unless the usage already
// says it or the default is the type's zero value.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprint(w, "\nFlags:\n")
			first = false
		}
		placeholder, usage := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if placeholder != "" {
			head += " " + placeholder
		}
		if !strings.Contains(usage, "(default") && !zeroDefault(f.DefValue) {
			def := f.DefValue
			if strings.ContainsAny(def, " \t") {
				def = strconv.Quote(def)
			}
			usage += " (default " + def + ")"
		}
		fmt.Fprintf(w, "%s\n      %s\n", head, usage)
	})
}

// zeroDefault reports whether a flag's default is its type's zero value,
// which help does not show.
func zeroDefault(v string) bool {
	switch v {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

// cmdVersion prints the version.
func cmdVersion(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "version", "", "Prints fanout's version.")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkArgs(pos, ""); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "fanout", version)
	return nil
}

// checkArgs refuses a missing or a stray argument. want names what the
// command takes, such as "one campaign id"; "" means no argument.
func checkArgs(pos []string, want string) error {
	switch {
	case want == "" && len(pos) > 0:
		return &usageError{fmt.Sprintf("unexpected argument %q: this command takes none", pos[0])}
	case want != "" && len(pos) == 0:
		return &usageError{"want " + want}
	case want != "" && len(pos) > 1:
		return &usageError{fmt.Sprintf("unexpected argument %q: want %s", pos[1], want)}
	}
	return nil
}

// parse parses flags wherever they appear among the arguments, so both
// "status ID --json" and "status --json ID" work.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	help := fs.Usage
	fs.Usage = func() {} // the flag package calls it on mistakes too
	defer func() { fs.Usage = help }()
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				help()
				return nil, err
			}
			return nil, &usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
