// Package redistest gives each test a Redis of its own: a private
// redis-server on a free port when the binary is installed, miniredis
// otherwise (the test log says which). No test ever touches a Redis it did
// not start.
//
//	srv := redistest.Start(t)
//	rdb := srv.Client(t)
//
// FANOUT_TEST_REDIS=miniredis forces the fallback; FANOUT_REDIS_SERVER names
// the redis-server binary.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Server is a Redis started for one test.
type Server struct {
	// Addr is host:port.
	Addr string
	// Real is true for a redis-server process, false for miniredis.
	Real bool
	// Mini is the miniredis instance when Real is false.
	Mini *miniredis.Miniredis
	// Dir is the redis-server's data folder (Real only).
	Dir string

	cmd    *exec.Cmd
	exited chan struct{}
	opts   Options
}

// Options tune a real server.
type Options struct {
	// AOF turns on appendonly everysec, for crash tests.
	AOF bool
	// RequireReal skips the test when redis-server is not installed.
	RequireReal bool
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Client returns a go-redis client closed at the end of the test.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, PoolSize: 64})
	t.Cleanup(func() { c.Close() })
	return c
}

// Binary returns the redis-server path, or "" when there is none or the
// fallback is forced.
func Binary() string {
	if os.Getenv("FANOUT_TEST_REDIS") == "miniredis" {
		return ""
	}
	if p := os.Getenv("FANOUT_REDIS_SERVER"); p != "" {
		return p
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return ""
	}
	return p
}

// Start starts a Redis for t and stops it when the test ends.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if o.RequireReal {
			t.Skip("redis-server is not installed (or FANOUT_TEST_REDIS=miniredis): this test needs a real Redis")
		}
		mr := miniredis.RunT(t)
		t.Logf("redistest: redis-server not found; using miniredis at %s", mr.Addr())
		return &Server{Addr: mr.Addr(), Mini: mr}
	}
	s := &Server{Real: true, Dir: t.TempDir(), opts: o}
	if err := s.start(bin, 0); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Stop)
	t.Logf("redistest: private redis-server at %s", s.Addr)
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start(bin string, port int) error {
	var lastErr error
	for try := 0; try < 5; try++ {
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(); err != nil {
				return err
			}
		}
		args := []string{"--port", strconv.Itoa(p), "--bind", "127.0.0.1", "--save", "", "--dir", s.Dir,
			"--daemonize", "no", "--protected-mode", "yes", "--maxmemory-policy", "noeviction",
			"--logfile", filepath.Join(s.Dir, "redis.log")}
		if s.opts.AOF {
			args = append(args, "--appendonly", "yes", "--appendfsync", "everysec")
		} else {
			args = append(args, "--appendonly", "no")
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", bin, err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(p)
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		if err := waitReady(addr, exited); err != nil {
			cmd.Process.Kill()
			<-exited
			lastErr = err
			if port != 0 {
				break
			}
			continue
		}
		s.cmd, s.Addr, s.exited = cmd, addr, exited
		return nil
	}
	return fmt.Errorf("redis-server did not start: %v", lastErr)
}

func waitReady(addr string, exited <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited at start", addr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s not ready after 10s", addr)
}

// Stop stops the server (kill -TERM); safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Freeze stops the server's process (SIGSTOP): connections stay open and
// every command hangs, as in a stalled host or a long fork. Thaw resumes
// it. Real servers only.
func (s *Server) Freeze() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return fmt.Errorf("redistest: no redis-server process to freeze")
	}
	return s.cmd.Process.Signal(syscall.SIGSTOP)
}

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return fmt.Errorf("redistest: no redis-server process to thaw")
	}
	return s.cmd.Process.Signal(syscall.SIGCONT)
}

// Kill stops the server with SIGKILL, as in a crash.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts a killed or stopped real server again on the same port and
// data folder.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	_, portStr, _ := net.SplitHostPort(s.Addr)
	port, _ := strconv.Atoi(portStr)
	if err := s.start(Binary(), port); err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
}

// UsedMemory is the server's used_memory (INFO memory), for tests that
// measure what their keys cost.
func UsedMemory(t testing.TB, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no used_memory in INFO")
	return 0
}
