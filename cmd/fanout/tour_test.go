package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tourBlock is the README's five-minute tour: its first sh block after the
// heading "A five-minute tour".
func tourBlock(t *testing.T, readme string) []string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## A five-minute tour")
	if !ok {
		t.Fatalf("%s: no heading '## A five-minute tour'", readme)
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatalf("%s: the tour has no ```sh block", readme)
	}
	return strings.Split(strings.TrimRight(block, "\n"), "\n")
}

func freeTCPPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// leftovers lists the processes whose command line mentions any of marks.
func leftovers(marks ...string) []string {
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		for _, m := range marks {
			if strings.Contains(cmd, m) {
				found = append(found, filepath.Base(filepath.Dir(f))+": "+cmd)
				break
			}
		}
	}
	return found
}

// The README's tour works when pasted line by line: run with its ports
// replaced by free ones (and /tmp by a private folder), every line
// succeeds, the documented outputs appear (status --watch returns while
// delivery reports are awaited, so pause and resume work after it), and
// nothing it started is left running.
func TestReadmeTour(t *testing.T) {
	if testing.Short() {
		t.Skip("the tour builds fanout and runs for about 20 s")
	}
	for _, tool := range []string{"redis-server", "redis-cli", "curl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the tour needs %s: %v", tool, err)
		}
	}
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(root, "examples"), filepath.Join(dir, "examples")); err != nil {
		t.Fatal(err)
	}
	redisPort, sandboxPort := freeTCPPort(t), freeTCPPort(t)
	lines := tourBlock(t, filepath.Join(root, "README.md"))
	var script strings.Builder
	script.WriteString("set -u\ntrap 'echo \"TOUR FAILED: $BASH_COMMAND exited $?\" >&2' ERR\n")
	steps := 0
	for _, l := range lines {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		l = strings.ReplaceAll(l, "6390", redisPort)
		l = strings.ReplaceAll(l, "8765", sandboxPort)
		l = strings.ReplaceAll(l, "/tmp/", dir+"/")
		if strings.HasPrefix(l, "make build") {
			// make build, with bin/ in the private folder.
			l = fmt.Sprintf("(cd %q && go build -o %q ./cmd/fanout)", root, filepath.Join(dir, "bin", "fanout"))
		}
		steps++
		fmt.Fprintf(&script, "echo '>>> step %d' >&2\n%s\n", steps, l)
	}
	script.WriteString("echo '>>> tour done' >&2\n")

	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "REDIS_URL" || strings.HasPrefix(k, "ONEROUTE_") || strings.HasPrefix(k, "FANOUT_") || strings.HasPrefix(k, "LOG_") {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	marks := []string{filepath.Join(dir, "bin", "fanout"), "redis-server *:" + redisPort, "127.0.0.1:" + redisPort}
	t.Cleanup(func() {
		// Whatever went wrong, leave nothing behind.
		exec.Command("redis-cli", "-p", redisPort, "shutdown", "nosave").Run() //nolint:errcheck // cleanup: the server may be gone already
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(4 * time.Minute):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-done
		t.Errorf("the tour did not finish in 4 minutes")
	}
	out, errOut := stdout.String(), stderr.String()
	if err != nil || strings.Contains(errOut, "TOUR FAILED") || !strings.Contains(errOut, ">>> tour done") {
		t.Fatalf("tour: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	t.Logf("the tour's standard output:\n%s", out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Campaign \S+ \(Welcome offer\) completed in`), // step 1, run --sandbox
		regexp.MustCompile(`"duplicates":0`),                                   // dispatch --dry-run --json, and the sandbox's stats
		regexp.MustCompile(`(?m)^campaign \S+ is sent: \d+ delivery reports? awaited`),
		regexp.MustCompile(`"state":"sent"`),
		regexp.MustCompile(`(?m)^campaign \S+ is now paused$`),
		regexp.MustCompile(`(?m)^campaign \S+ is now sent$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the tour's output lacks %s\nstdout:\n%s", want, out)
		}
	}
	// Every process the tour started is gone once it is over (the workers
	// stop on SIGTERM within their stop timeout; allow for it).
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := leftovers(marks...)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tour left processes running:\n%s", strings.Join(left, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+redisPort, time.Second); err == nil {
		c.Close()
		t.Fatalf("the tour's Redis still listens on %s", redisPort)
	}
}
