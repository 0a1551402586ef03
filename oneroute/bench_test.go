package oneroute_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/fanoutdev/fanout/oneroute"
)

// cannedServer answers every request on a connection with the same SMS
// send answer, as cheaply as a server can, so that a benchmark measures the
// client.
func cannedServer(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	body := `{"data":[{"status":"success","response":"6f1c2a9e-5b7d-4c3e-8a21-0d9e8f7a6b5c"}],"message":"SMS sent","success":true}`
	answer := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// BenchmarkSendSMS is the client's own cost of one personalised SMS send
// (encode, request, answer, decode) against a server that does nothing.
func BenchmarkSendSMS(b *testing.B) { benchSendSMS(b, context.Background()) }

// BenchmarkSendSMSCancellable is BenchmarkSendSMS with a context that can
// be cancelled, as a worker's task context can: the transport then watches
// it during each call.
func BenchmarkSendSMSCancellable(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	benchSendSMS(b, ctx)
}

func benchSendSMS(b *testing.B, ctx context.Context) {
	c, err := oneroute.New(oneroute.Options{BaseURL: cannedServer(b), APIKey: "test_bench"})
	if err != nil {
		b.Fatal(err)
	}
	r := oneroute.SMSRequest{Message: "Hello Ada, your order 1234 ships today.", Recipients: []string{"+2348031234567"}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.SendSMS(ctx, "9b2f6c1e-1f6a-4d8e-9a57-5b0f2a7d0002", r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
