// Command sendonly measures the floor of a per-message send: one
// oneroute.Client.SendSMS call per personalised message from -concurrency
// goroutines against the sandbox in its own process, with no Redis, no
// queue and no ledger. It prints messages/s and CPU per message (its own
// and, given -sandbox-pid, the sandbox's) as JSON, so that the number of
// requests in flight and of connections can be sized by measurement.
// With -raw it sends the same requests over plain keep-alive connections
// with a minimal HTTP/1.1 writer and reader (one connection per goroutine,
// no net/http, no encoding/json), to show how much of a call's CPU is the
// client library rather than the two syscalls a request needs.
//
//	go run ./bench/sendonly -sandbox http://127.0.0.1:8765 -n 100000 -concurrency 32 -sandbox-pid $SANDBOX_PID
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanoutdev/fanout/bench/internal/measure"
	"github.com/fanoutdev/fanout/oneroute"
)

func main() {
	sandboxURL := flag.String("sandbox", "http://127.0.0.1:8765", "sandbox base `URL`")
	channel := flag.String("channel", "9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0002", "SMS channel `id` (default: the sandbox's)")
	n := flag.Int("n", 100_000, "messages")
	conc := flag.Int("concurrency", 32, "requests in flight (goroutines)")
	maxConns := flag.Int("max-conns", 0, "MaxConnsPerHost of the client (0: the client's default, 512)")
	sandboxPID := flag.Int("sandbox-pid", 0, "`pid` of the sandbox, to report its CPU")
	raw := flag.Bool("raw", false, "minimal HTTP/1.1 client instead of oneroute.Client")
	flag.Parse()
	c, err := oneroute.New(oneroute.Options{BaseURL: *sandboxURL, APIKey: "test_bench", MaxConnsPerHost: *maxConns})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sendonly:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	t0, cpu0, sb0 := time.Now(), measure.SelfCPU(), measure.ProcCPU(*sandboxPID)
	for g := 0; g < *conc; g++ {
		wg.Add(1)
		if *raw {
			go func() {
				defer wg.Done()
				if err := rawSender(*sandboxURL, *channel, *n, &next); err != nil {
					errs.Add(1)
				}
			}()
			continue
		}
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) {
					return
				}
				to := "234803" + pad7(i)
				msg := "Hi Name" + strconv.FormatInt(i, 10) + ", your 10% welcome discount is waiting. Reply STOP to opt out."
				if _, err := c.SendSMS(ctx, *channel, oneroute.SMSRequest{Message: msg, Recipients: []string{to}}); err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0).Seconds()
	cpu := measure.SelfCPU() - cpu0
	out := map[string]any{
		"program": "sendonly", "raw": *raw, "n": *n, "concurrency": *conc, "max_conns": *maxConns, "errors": errs.Load(),
		"s": wall, "msgs_per_s": float64(*n) / wall, "cpu_us_per_msg": cpu * 1e6 / float64(*n),
		"max_rss_kb": measure.SelfMaxRSSKB(), "loadavg": measure.LoadAvg(),
	}
	if *sandboxPID > 0 {
		out["sandbox_cpu_us_per_msg"] = (measure.ProcCPU(*sandboxPID) - sb0) * 1e6 / float64(*n)
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

func pad7(i int64) string {
	s := strconv.FormatInt(i%10_000_000, 10)
	for len(s) < 7 {
		s = "0" + s
	}
	return s
}

// rawSender sends requests one at a time on its own keep-alive connection,
// building each request by hand and reading the answer by Content-Length.
func rawSender(base, channel string, n int, next *atomic.Int64) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		return err
	}
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 16<<10)
	head := fmt.Appendf(nil, "POST /api/public/channel/%s/sms HTTP/1.1\r\nHost: %s\r\nUser-Agent: fanout/bench\r\napiKey: test_bench\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: ", channel, u.Host)
	req := make([]byte, 0, 1024)
	body := make([]byte, 0, 512)
	for {
		i := next.Add(1) - 1
		if i >= int64(n) {
			return nil
		}
		body = append(body[:0], `{"message":"Hi Name`...)
		body = strconv.AppendInt(body, i, 10)
		body = append(body, `, your 10% welcome discount is waiting. Reply STOP to opt out.","recipients":["234803`...)
		body = append(body, pad7(i)...)
		body = append(body, `"]}`...)
		req = append(req[:0], head...)
		req = strconv.AppendInt(req, int64(len(body)), 10)
		req = append(req, "\r\n\r\n"...)
		req = append(req, body...)
		if _, err := conn.Write(req); err != nil {
			return err
		}
		resp, err := readResponse(br)
		if err != nil {
			return err
		}
		if !bytes.Contains(resp, []byte(`"status":"success"`)) {
			return fmt.Errorf("not accepted: %s", resp)
		}
	}
}

// readResponse reads one HTTP/1.1 response with a Content-Length body and
// returns the body (valid until the next read).
func readResponse(br *bufio.Reader) ([]byte, error) {
	length := -1
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if first {
			if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 2")) {
				return nil, fmt.Errorf("status %q", line)
			}
			continue
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if length < 0 {
		return nil, errors.New("no Content-Length")
	}
	b, err := br.Peek(length)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(b)
	_, err = br.Discard(length)
	return out, err
}
