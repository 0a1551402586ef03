// Package measure reads the CPU and memory figures the delivery benchmarks
// report: a process's own CPU (getrusage), another process's CPU and peak
// RSS (/proc/<pid>/stat and status, Linux only), and a Redis server's CPU
// (INFO cpu). It is shared by the programs under bench/.
//
//	before := measure.ProcCPU(pid)
//	// ... the run ...
//	used := measure.ProcCPU(pid) - before // seconds of user + system CPU
package measure

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux platform Go supports.
const clockTicks = 100

// SelfCPU returns this process's user + system CPU time in seconds.
func SelfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return tv(ru.Utime) + tv(ru.Stime)
}

// SelfMaxRSSKB returns this process's peak resident set size in kB.
func SelfMaxRSSKB() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// ProcCPU returns the user + system CPU time of process pid in seconds, from
// /proc/<pid>/stat (10 ms resolution). It returns -1 when pid is 0 or the
// process cannot be read.
func ProcCPU(pid int) float64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	// After ')': state is field 3, so utime (14) and stime (15) are at
	// indexes 11 and 12.
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return float64(ut+st) / clockTicks
}

// ProcHWMKB returns the peak RSS (VmHWM) of process pid in kB, or -1.
func ProcHWMKB(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return -1
}

// RedisCPU returns used_cpu_user + used_cpu_sys of the Redis server (the
// whole process, all threads) in seconds.
func RedisCPU(ctx context.Context, rdb redis.UniversalClient) (float64, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		for _, k := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return 0, fmt.Errorf("INFO cpu %s: %w", line, err)
				}
				sum += f
			}
		}
	}
	return sum, nil
}

// CommandStats returns INFO commandstats as command -> {calls, usec}.
func CommandStats(ctx context.Context, rdb redis.UniversalClient) (map[string][2]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string][2]int64{}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var calls, usec int64
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		out[strings.TrimPrefix(name, "cmdstat_")] = [2]int64{calls, usec}
	}
	return out, nil
}

// LoadAvg returns the first field of /proc/loadavg (the 1-minute load
// average), or "" when it cannot be read.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// Stopwatch pairs a wall clock with a CPU reading function.
type Stopwatch struct {
	start time.Time
	cpu0  float64
	read  func() float64
}

// Start starts a stopwatch over read (e.g. SelfCPU).
func Start(read func() float64) *Stopwatch {
	return &Stopwatch{start: time.Now(), cpu0: read(), read: read}
}

// Lap returns the wall time and CPU seconds since Start.
func (s *Stopwatch) Lap() (wall time.Duration, cpu float64) {
	return time.Since(s.start), s.read() - s.cpu0
}

// CmdDelta is one Redis command's calls and server time per message over a
// run (from two INFO commandstats readings). Commands called from Lua
// scripts are counted too, under their own names, as well as in evalsha.
type CmdDelta struct {
	Calls float64 `json:"calls"`
	Usec  float64 `json:"usec"`
}

// PerMessage returns the commands whose count grew between before and
// after, divided by n.
func PerMessage(before, after map[string][2]int64, n int) map[string]CmdDelta {
	out := map[string]CmdDelta{}
	for k, a := range after {
		b := before[k]
		if a[0] > b[0] {
			out[k] = CmdDelta{Calls: float64(a[0]-b[0]) / float64(n), Usec: float64(a[1]-b[1]) / float64(n)}
		}
	}
	return out
}
