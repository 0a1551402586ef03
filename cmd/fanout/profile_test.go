package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fanoutdev/fanout/internal/testwait"
)

// A pprof file is gzip-compressed protobuf.
var gzipMagic = []byte{0x1f, 0x8b}

func profileEnv(path string) func(string) string {
	return func(k string) string {
		if k == "FANOUT_CPU_PROFILE" {
			return path
		}
		return ""
	}
}

func TestStartProfileWritesOnStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	var stderr bytes.Buffer
	stop, err := startProfile(profileEnv(path), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	stop() // a second stop does nothing
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, gzipMagic) {
		t.Fatalf("%s is not a pprof file: % x", path, b[:min(len(b), 8)])
	}
	if got := bytes.Count(stderr.Bytes(), []byte("CPU profile written to")); got != 1 {
		t.Fatalf("stderr says the profile was written %d times, want 1: %q", got, stderr.String())
	}
}

func TestStartProfileWritesOnSIGUSR1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	stop, err := startProfile(profileEnv(path), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the profile written after SIGUSR1", 10*time.Second, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && bytes.HasPrefix(b, gzipMagic)
	})
}

func TestStartProfileOff(t *testing.T) {
	stop, err := startProfile(func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := startProfile(profileEnv(filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.pprof")), io.Discard); err == nil {
		t.Fatal("a profile path in a missing directory was accepted")
	}
}
