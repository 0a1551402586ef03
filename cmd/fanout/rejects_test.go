package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The --rejects file of fanout run: one that cannot be written fails the
// run (exit 1, the write error on stderr) rather than ending 0 with the
// refused rows lost; one that is written is readable by its owner only, as
// it holds recipients' addresses.
func TestRunRejectsFile(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full to fail the write")
	}
	b := setup(t)
	if code := b.run(t, "run", "--sandbox", "--dlr-max-age", "3s", "--timeout", "90s", "--rejects", "/dev/full", "../../examples/sms.yaml"); code != exitError ||
		!strings.Contains(b.stderr.String(), "no space left on device") {
		t.Fatalf("--rejects /dev/full: exit %d, want %d with the write error; stderr:\n%s", code, exitError, b.stderr.String())
	}

	path := filepath.Join(t.TempDir(), "rejects.csv")
	if code := b.run(t, "run", "--sandbox", "--dlr-max-age", "3s", "--timeout", "90s", "--rejects", path, "../../examples/sms.yaml"); code != exitOK {
		t.Fatalf("--rejects %s: exit %d; stderr:\n%s", path, code, b.stderr.String())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("rejects file mode %v, want -rw-------", mode)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(body), "row,line,value,reason\n") || strings.Count(string(body), "\n") < 2 {
		t.Errorf("rejects file:\n%s\nwant the header and the refused row", body)
	}
}
