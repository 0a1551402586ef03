package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

// fakePasswd stands in for /etc/passwd: lines a spec must never get shown.
const fakePasswd = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"

// confineBundle is a spec root T/srv/specs holding recipients r.csv, with a
// fake password file at T/etc/passwd: ../../etc/passwd from the root.
type confineBundle struct {
	*testBundle
	root string
}

func setupConfine(t *testing.T) *confineBundle {
	t.Helper()
	tmp := t.TempDir()
	root := filepath.Join(tmp, "srv", "specs")
	for _, d := range []string{root, filepath.Join(tmp, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{
		filepath.Join(tmp, "etc", "passwd"): fakePasswd,
		filepath.Join(root, "r.csv"):        "phone,name\n08031234567,Ada\n",
	} {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := setup(t)
	b.env["REDIS_URL"] = "redis://127.0.0.1:1/0" // never reached when the input is refused
	return &confineBundle{testBundle: b, root: root}
}

// spec writes a campaign spec into the root with these extra keys.
func (c *confineBundle) spec(t *testing.T, keys string) string {
	t.Helper()
	path := filepath.Join(c.root, "c.yaml")
	body := fmt.Sprintf("name: confine\nchannel: sms\nchannel_id: %s\nmessage: \"Hello {{.name}}\"\n%s", sandbox.SMSChannelID, keys)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// With FANOUT_SPEC_ROOT set, a spec cannot make fanout read a file outside
// the root, by ../ or a link, as recipients or as suppression list: exit 2,
// with the fix, and not one line of the file in the message.
func TestSpecRootRefusesPathsOutside(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		keys string
		link bool   // link.csv is a link to the password file
		at   string // where the error points
	}{
		{name: "recipients ../../etc/passwd", keys: "recipients: ../../etc/passwd\n", at: "c.yaml:5: recipients:"},
		{name: "suppress ../../etc/passwd", keys: "recipients: r.csv\nsuppress: ../../etc/passwd\n", at: "c.yaml:6: suppress:"},
		{name: "recipients through a link", keys: "recipients: link.csv\n", link: true, at: "c.yaml:5: recipients:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := setupConfine(t)
			c.env["FANOUT_SPEC_ROOT"] = c.root
			if tc.link {
				if err := os.Symlink("../../etc/passwd", filepath.Join(c.root, "link.csv")); err != nil {
					t.Skipf("symbolic links: %v", err)
				}
			}
			spec := c.spec(t, tc.keys)
			for _, args := range [][]string{{"run", "--sandbox", spec}, {"dispatch", "--dry-run", "--offline", spec}} {
				code := c.run(t, args...)
				stderr := c.stderr.String()
				if code != exitBadInput {
					t.Errorf("%s: exit %d, want %d\n%s", args[0], code, exitBadInput, stderr)
				}
				for _, w := range []string{tc.at, "outside the spec root " + c.root, "unset FANOUT_SPEC_ROOT"} {
					if !strings.Contains(stderr, w) {
						t.Errorf("%s: stderr lacks %q:\n%s", args[0], w, stderr)
					}
				}
				for _, line := range strings.Split(strings.TrimSpace(fakePasswd), "\n") {
					for _, part := range strings.Split(line, ":")[:1] {
						if strings.Contains(stderr, line) || strings.Contains(stderr, part+":x:") {
							t.Errorf("%s: stderr shows the file's line %q:\n%s", args[0], line, stderr)
						}
					}
				}
			}
		})
	}
}

// Inside the root, or with no root set, the same paths pass the input
// checks (the runs then stop at the unreachable Redis, exit 1).
func TestSpecRootAllowsPathsInside(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		root bool
		keys string
	}{
		{name: "inside the root", root: true, keys: "recipients: r.csv\nsuppress: r.csv\n"},
		{name: "no root", keys: "recipients: ../../etc/passwd\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := setupConfine(t)
			if tc.root {
				c.env["FANOUT_SPEC_ROOT"] = c.root + string(filepath.Separator)
			}
			code := c.run(t, "run", "--sandbox", c.spec(t, tc.keys))
			if strings.Contains(c.stderr.String(), "outside the spec root") {
				t.Errorf("exit %d, refused:\n%s", code, c.stderr.String())
			}
		})
	}
}
