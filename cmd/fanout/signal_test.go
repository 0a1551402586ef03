package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fanoutdev/fanout/internal/testwait"
	"github.com/fanoutdev/fanout/oneroute/sandbox"
)

// The first signal cancels the context and says how to exit at once; the
// second exits with 128 + the signal's number, whatever the work is doing.
func TestNotifyContextSecondSignalExits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		sigs     []os.Signal
		wantCode int
		want     []string // lines on stderr
	}{
		{"interrupt twice", []os.Signal{os.Interrupt, os.Interrupt}, 130, []string{
			"fanout: stopping (interrupt); press Ctrl-C again to exit at once",
			"fanout: second signal (interrupt), exiting now; work in progress is recovered by the next run (dispatch resumes from its checkpoint, asynq retries a worker's unfinished tasks)",
		}},
		{"terminate twice", []os.Signal{syscall.SIGTERM, syscall.SIGTERM}, 143, []string{
			"fanout: stopping (terminated); send it again to exit at once",
			"fanout: second signal (terminated), exiting now; work in progress is recovered by the next run (dispatch resumes from its checkpoint, asynq retries a worker's unfinished tasks)",
		}},
		{"terminate then interrupt", []os.Signal{syscall.SIGTERM, os.Interrupt}, 130, []string{
			"fanout: stopping (terminated); send it again to exit at once",
			"fanout: second signal (interrupt), exiting now; work in progress is recovered by the next run (dispatch resumes from its checkpoint, asynq retries a worker's unfinished tasks)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ch := make(chan os.Signal)
			codes := make(chan int, 1)
			var stderr bytes.Buffer
			ctx, stop := notifyContext(context.Background(), ch, func(code int) { codes <- code }, &stderr)
			defer stop()

			ch <- tc.sigs[0]
			<-ctx.Done() // the note is written before the cancel
			if !errors.Is(ctx.Err(), context.Canceled) {
				t.Fatalf("ctx.Err() = %v, want context.Canceled", ctx.Err())
			}
			select {
			case code := <-codes:
				t.Fatalf("exit(%d) after the first signal", code)
			default:
			}
			ch <- tc.sigs[1]
			select {
			case code := <-codes:
				if code != tc.wantCode {
					t.Errorf("exit(%d), want exit(%d)", code, tc.wantCode)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no exit after the second signal")
			}
			got := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// Without a signal nothing is printed and nothing exits: stop and a
// cancelled parent both end the watch quietly.
func TestNotifyContextQuietWithoutSignal(t *testing.T) {
	t.Parallel()
	exit := func(code int) { t.Errorf("exit(%d) without a signal", code) }

	var stderr bytes.Buffer
	ch := make(chan os.Signal, 1)
	ctx, stop := notifyContext(context.Background(), ch, exit, &stderr)
	stop()
	stop() // safe twice
	<-ctx.Done()

	parent, cancel := context.WithCancel(context.Background())
	ctx2, stop2 := notifyContext(parent, ch, exit, &stderr)
	defer stop2()
	cancel()
	<-ctx2.Done()
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want nothing", stderr.String())
	}
}

// lockedBuffer is a bytes.Buffer a subprocess's output and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Issue 16: a second SIGTERM ends dispatch within 1 s even while it works.
// The dispatch reads recipients from a standard input that never closes, so
// its reader is blocked in a read that the first SIGTERM's cancellation
// cannot end: without the second signal it would hang forever.
func TestSecondSIGTERMEndsStuckDispatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := filepath.Join(dir, "c.yaml")
	body := fmt.Sprintf("name: stuck\nchannel: sms\nchannel_id: %s\nmessage: \"Hello {{.name}}\"\nrecipients: \"-\"\n", sandbox.SMSChannelID)
	if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fanoutBinary(t), "dispatch", "--dry-run", "--offline", spec)
	cmd.Env = append(os.Environ(), "LOG_FORMAT=json", "LOG_LEVEL=warn")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})

	// 200 rows of about 500 bytes: more than a pipe holds (64 KiB), so when
	// the write returns the dispatch has read part of them and is past its
	// start (signals are handled); fewer than the dispatcher's chunk of 256
	// rows, so its reader hands nothing on, and blocks reading the rest of
	// a standard input that stays open: no cancellation can end that read.
	var rows bytes.Buffer
	rows.WriteString("phone,name\n")
	pad := strings.Repeat("x", 480)
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&rows, "0803%07d,Person %d %s\n", 1000000+i, i, pad)
	}
	if rows.Len() < 96<<10 {
		t.Fatalf("%d bytes of rows; want more than a pipe holds", rows.Len())
	}
	if _, err := stdin.Write(rows.Bytes()); err != nil {
		t.Fatalf("write recipients: %v\n%s", err, stderr.String())
	}

	cmd.Process.Signal(syscall.SIGTERM)
	testwait.For(t, "the first signal's note", 10*time.Second, func() bool {
		return strings.Contains(stderr.String(), "fanout: stopping (terminated)")
	})
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("dispatch ended after the first signal (%v), so this test does not prove the second one works\n%s", err, stderr.String())
	default:
	}

	sent := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	var waitErr error
	select {
	case waitErr = <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("dispatch still running 10 s after the second SIGTERM\n%s", stderr.String())
	}
	took := time.Since(sent)
	// The exit itself takes milliseconds; 1 s is the promise and
	// leaves room for a loaded CI machine.
	if took >= time.Second {
		t.Errorf("dispatch took %s to exit after the second SIGTERM, want under 1s", took)
	}
	var ee *exec.ExitError
	if !errors.As(waitErr, &ee) || ee.ExitCode() != 143 {
		t.Errorf("exit: %v, want exit status 143\n%s", waitErr, stderr.String())
	}
	if !strings.Contains(stderr.String(), "fanout: second signal (terminated), exiting now") {
		t.Errorf("stderr lacks the second signal's message:\n%s", stderr.String())
	}
	t.Logf("exited %s after the second SIGTERM", took.Round(time.Millisecond))
}
