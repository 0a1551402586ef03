package recipients

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const secretLine = "SECRET-LINE-4F7A,never echoed"

// confineTree builds, under a temporary directory T:
//
//	T/data/                   the root
//	T/data/top.csv
//	T/data/sub/r.csv
//	T/data/sub/alias.csv   -> ../top.csv              (stays inside)
//	T/data/sub/escape.csv  -> ../../outside/secret.csv (leaves)
//	T/data/outdir          -> ../outside              (a folder outside)
//	T/data2/r.csv                                      (shares the root's prefix)
//	T/datalink             -> data                     (a link to the root)
//	T/outside/secret.csv
//	T/secret.csv
//
// and returns T with its links resolved.
func confineTree(t testing.TB) string {
	t.Helper()
	tmp, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"data/sub", "data2", "outside"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"data/top.csv", "data/sub/r.csv", "data2/r.csv", "outside/secret.csv", "secret.csv"} {
		if err := os.WriteFile(filepath.Join(tmp, f), []byte("phone\n"+secretLine+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"data/sub/alias.csv": "../top.csv", "data/sub/escape.csv": "../../outside/secret.csv",
		"data/outdir": "../outside", "datalink": "data",
	} {
		if err := os.Symlink(target, filepath.Join(tmp, link)); err != nil {
			t.Skipf("symbolic links: %v", err)
		}
	}
	return tmp
}

// A spec's files cannot leave the spec root: not by ../, an absolute path,
// a link, or a root that is a prefix of another folder's name; what stays
// inside is allowed, and the error never shows the file's contents.
// Not parallel: relative paths are taken from the working directory, which
// the test changes.
func TestConfine(t *testing.T) {
	tmp := confineTree(t)
	t.Chdir(filepath.Join(tmp, "data", "sub"))
	root := filepath.Join(tmp, "data")
	in := func(p string) string { return filepath.Join(tmp, p) }
	for _, tc := range []struct {
		name, root, path string
		want             string // the resolved path; "" when refused
	}{
		{name: "nested file", path: "r.csv", want: in("data/sub/r.csv")},
		{name: "nested file, absolute", path: in("data/sub/r.csv"), want: in("data/sub/r.csv")},
		{name: "up, but still inside", path: "../top.csv", want: in("data/top.csv")},
		{name: "file not there yet", path: "new.csv", want: in("data/sub/new.csv")},
		{name: "root itself", path: root, want: root},
		{name: "root with a trailing slash", root: root + string(filepath.Separator), path: "r.csv", want: in("data/sub/r.csv")},
		{name: "root given through a link", root: in("datalink"), path: "r.csv", want: in("data/sub/r.csv")},
		{name: "link that stays inside", path: "alias.csv", want: in("data/top.csv")},
		{name: "stdin", path: "-", want: "-"},
		{name: "relative escape", path: "../../outside/secret.csv"},
		{name: "relative escape far up", path: "../../../../../../../../../../etc/passwd"},
		{name: "relative escape to a missing file", path: "../../nothing.csv"},
		{name: "absolute outside", path: in("outside/secret.csv")},
		{name: "symlink escape", path: "escape.csv"},
		{name: "file not there yet in a linked folder outside", path: "../outdir/new.csv"},
		{name: "../ after a link to outside", path: "../outdir/../secret.csv"},
		{name: "../ past a missing folder onto a link", path: "missing/../escape.csv"},
		{name: "prefix trick", path: in("data2/r.csv")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := root
			if tc.root != "" {
				r = tc.root
			}
			got, err := Confine(r, tc.path)
			if tc.want != "" {
				if err != nil {
					t.Fatalf("Confine(%q, %q): %v", r, tc.path, err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("resolved path (-want +got):\n%s", diff)
				}
				return
			}
			if !errors.Is(err, ErrOutsideRoot) {
				t.Fatalf("Confine(%q, %q) = %q, %v; want ErrOutsideRoot", r, tc.path, got, err)
			}
			msg := err.Error()
			for _, w := range []string{tc.path, r, "move the file under", "unset FANOUT_SPEC_ROOT"} {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q: %s", w, msg)
				}
			}
			if strings.Contains(msg, "SECRET-LINE") {
				t.Errorf("error shows the file's contents: %s", msg)
			}
		})
	}
}

// A root that does not exist is an error of its own, not a refusal.
func TestConfineMissingRoot(t *testing.T) {
	t.Parallel()
	_, err := Confine(filepath.Join(t.TempDir(), "nope"), "r.csv")
	if err == nil || errors.Is(err, ErrOutsideRoot) {
		t.Fatalf("err = %v, want an error about the root", err)
	}
	if _, err := Confine("", "r.csv"); err == nil {
		t.Fatal("empty root: no error")
	}
}

// Whatever the path, an accepted one is within the root, and for a file
// that exists it is where the kernel's own resolution leads.
func FuzzConfine(f *testing.F) {
	for _, s := range []string{"r.csv", "../top.csv", "../../outside/secret.csv", "escape.csv", "alias.csv",
		"../outdir/../secret.csv", "missing/../escape.csv", "../outdir/secret.csv", "./././r.csv", "..//..//data/sub/r.csv",
		"/etc/passwd", "-", "", "../../datalink/sub/alias.csv"} {
		f.Add(s)
	}
	tmp := confineTree(f)
	root := filepath.Join(tmp, "data")
	base := filepath.Join(root, "sub")
	f.Fuzz(func(t *testing.T, path string) {
		if strings.ContainsRune(path, 0) {
			return
		}
		if path != "-" && !filepath.IsAbs(path) {
			path = base + string(filepath.Separator) + path
		}
		got, err := Confine(root, path)
		if err != nil || path == "-" {
			return
		}
		if !within(root, got) {
			t.Fatalf("Confine(%q) = %q, outside %s", path, got, root)
		}
		if real, err := filepath.EvalSymlinks(path); err == nil && real != got {
			t.Fatalf("Confine(%q) = %q, but the path leads to %q", path, got, real)
		}
	})
}
