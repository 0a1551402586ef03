package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Every command answers --help (and "fanout help X") with its usage on
// standard output and exit 0, lists its flags GNU-style, and shows each
// default once.
func TestEveryCommandHelp(t *testing.T) {
	t.Parallel()
	singleDash := regexp.MustCompile(`(?m)^\s+-[a-z]`)
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				if code := b.run(t, args...); code != exitOK {
					t.Fatalf("exit %d, want 0; stderr:\n%s", code, b.stderr.String())
				}
				out := b.stdout.String()
				if !strings.HasPrefix(out, "Usage: fanout "+c.name) {
					t.Errorf("stdout does not start with the usage:\n%s", out)
				}
				if singleDash.MatchString(out) {
					t.Errorf("a flag is shown with a single dash:\n%s", out)
				}
				for _, line := range strings.Split(out, "\n") {
					if strings.Count(line, "(default") > 1 {
						t.Errorf("default shown twice: %q", line)
					}
				}
				if b.stderr.Len() != 0 {
					t.Errorf("stderr = %q, want nothing", b.stderr.String())
				}
			})
		}
	}
}

// The flags of a command are printed as "--name placeholder", the usage
// below, and a default the usage does not already give appended once.
func TestHelpFlagLayout(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want []string // consecutive lines expected in stdout
	}{
		{"window names its default in the usage", []string{"dispatch", "--help"}, []string{
			"  --window int",
			"      most unfinished batches kept in Redis; 0 means no limit (default FANOUT_WINDOW)",
		}},
		{"string default quoted when it has spaces", []string{"pause", "--help"}, []string{
			"  --reason string",
			`      why, recorded with the state change and shown by status until the next one (default "by an operator")`,
		}},
		{"bool without placeholder", []string{"status", "--help"}, []string{
			"  --json",
			"      print one JSON object",
		}},
		{"non-zero default appended", []string{"sandbox", "--help"}, []string{
			"  --addr address",
			"      listen address (default 127.0.0.1:8765)",
		}},
		{"zero default not shown", []string{"sandbox", "--help"}, []string{
			"  --latency-ms int",
			"      added latency per API request, in ms",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if code := b.run(t, tc.args...); code != exitOK {
				t.Fatalf("exit %d", code)
			}
			lines := strings.Split(b.stdout.String(), "\n")
			for i, l := range lines {
				if l == tc.want[0] && i+len(tc.want) <= len(lines) {
					if diff := cmp.Diff(tc.want, lines[i:i+len(tc.want)]); diff != "" {
						t.Errorf("(-want +got):\n%s", diff)
					}
					return
				}
			}
			t.Errorf("no line %q in:\n%s", tc.want[0], b.stdout.String())
		})
	}
}

// A stray or missing argument is refused with exit 2, before anything
// connects anywhere, naming the argument and pointing at the command's help.
func TestStrayArgumentRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want string // the first line of stderr
	}{
		{"worker", []string{"worker", "extra"}, `fanout worker: unexpected argument "extra": this command takes none`},
		{"sandbox", []string{"sandbox", "--addr", "127.0.0.1:0", "extra"}, `fanout sandbox: unexpected argument "extra": this command takes none`},
		{"list", []string{"list", "extra"}, `fanout list: unexpected argument "extra": this command takes none`},
		{"version", []string{"version", "extra"}, `fanout version: unexpected argument "extra": this command takes none`},
		{"status", []string{"status", "c1", "extra"}, `fanout status: unexpected argument "extra": want one campaign id`},
		{"pause", []string{"pause", "c1", "extra"}, `fanout pause: unexpected argument "extra": want one campaign id`},
		{"resume", []string{"resume", "c1", "extra"}, `fanout resume: unexpected argument "extra": want one campaign id`},
		{"cancel", []string{"cancel", "--json", "c1", "extra"}, `fanout cancel: unexpected argument "extra": want one campaign id`},
		{"dispatch", []string{"dispatch", "a.yaml", "extra"}, `fanout dispatch: unexpected argument "extra": want one campaign spec file`},
		{"run", []string{"run", "--sandbox", "a.yaml", "extra"}, `fanout run: unexpected argument "extra": want one campaign spec file`},
		{"status without id", []string{"status"}, `fanout status: want one campaign id`},
		{"run without spec", []string{"run"}, `fanout run: want one campaign spec file`},
		{"--version", []string{"--version", "extra"}, `fanout version: unexpected argument "extra": this command takes none`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.env["REDIS_URL"] = "redis://127.0.0.1:1/0" // never reached
			if code := b.run(t, tc.args...); code != exitBadInput {
				t.Errorf("exit %d, want 2", code)
			}
			cmdName, _, _ := strings.Cut(strings.TrimPrefix(tc.want, "fanout "), ":")
			want := tc.want + "\nRun 'fanout " + cmdName + " --help' for usage.\n"
			if diff := cmp.Diff(want, b.stderr.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if b.stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", b.stdout.String())
			}
		})
	}
}

// "fanout help" takes at most one command.
func TestHelpTakesOneCommand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if code := b.run(t, "help", "worker", "extra"); code != exitBadInput {
		t.Errorf("exit %d, want 2", code)
	}
	want := "fanout help: unexpected argument \"extra\": want one command\nRun 'fanout help' for the commands.\n"
	if diff := cmp.Diff(want, b.stderr.String()); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
}
