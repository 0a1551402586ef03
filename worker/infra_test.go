package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/oneroute"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

// errRedisDown is what go-redis returns when the connection to Redis drops.
var errRedisDown = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}

// failScripts lets the first skip script calls through, then fails the
// next n as if Redis were gone.
type failScripts struct {
	skip, n int64
	calls   atomic.Int64
}

func (f *failScripts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *failScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (f *failScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		name := strings.ToLower(cmd.Name())
		if name != "evalsha" && name != "eval" {
			return next(ctx, cmd)
		}
		if c := f.calls.Add(1); c > f.skip && c <= f.skip+f.n {
			cmd.SetErr(errRedisDown)
			return errRedisDown
		}
		err := next(ctx, cmd)
		if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			f.calls.Add(-1) // go-redis loads the script and calls again: one call
		}
		return err
	}
}

// A Redis failure while stamping (just before the request) never counts
// against the recipients' provider attempts: even with MaxAttempts 1 the
// recipients are not failed "gave up after 1 attempts"; OneRoute is not
// asked, and the batch follows up without a failure counted. When the
// release cannot be written either, the task error is not a failure for
// asynq and comes back after a bounded wait.
func TestRedisErrorWhileStampingIsNotAProviderFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		failScripts int64 // script calls failing after the claim: the stamp, then the release
		wantErr     bool
	}{
		{"stamp fails", 1, false},
		{"stamp and release fail", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			rdb := srv.Client(t)
			store := storage.New(rdb)
			b := &testBundle{ctx: context.Background(), store: store, prov: &fakeProvider{}, enq: &fakeEnqueuer{}}
			b.prov.sms = func(to []string, _ string) ([]oneroute.Result, error) { return ok(to), nil }
			b.opts = Options{MaxAttempts: 1, RequestTimeout: time.Second}
			b.mux = NewMux(Deps{Store: store, Provider: b.prov, Enqueuer: b.enq, Limiter: &blockRecorder{}}, b.opts)
			s := spec("infra", campaigns.ChannelSMS)
			batch := b.campaign(t, s, "+2348030000001")
			// From here on: the claim goes through, then Redis fails.
			rdb.AddHook(&failScripts{skip: 1, n: tc.failScripts})
			err := b.run(t, batch)
			if tc.wantErr {
				if err == nil {
					t.Fatal("the task succeeded although its release could not be written")
				}
				if IsFailure(err) {
					t.Errorf("IsFailure(%v) = true: a Redis outage would use up the task's retries", err)
				}
				if d := RetryDelay(time.Second)(50, err, nil); d < time.Second || d > 10*time.Second {
					t.Errorf("retry delay after a Redis error = %s, want a bounded wait of a few seconds", d)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if n := b.prov.times("+2348030000001"); n != 0 {
				t.Errorf("OneRoute asked %d times without a stamp, want 0", n)
			}
			p := b.progress(t, s.ID)
			if p.Failed != 0 {
				t.Fatalf("failed %d (reasons %v): a Redis error counted against the provider attempts", p.Failed, p.FailureReasons)
			}
			if tc.wantErr {
				return
			}
			kids := b.children(t, tasks.TypeSMSSend)
			if len(kids) != 1 || len(kids[0].Items) != 1 || kids[0].Failures != 0 {
				t.Fatalf("follow-ups %+v: want one with the recipient and no failure counted", kids)
			}
			// Redis is back: the follow-up sends it, once.
			if err := b.mux.ProcessTask(b.ctx, asynq.NewTask(tasks.TypeSMSSend, tasks.Encode(kids[0]))); err != nil {
				t.Fatal(err)
			}
			if p := b.progress(t, s.ID); p.Sent != 1 || p.Failed != 0 || b.prov.times("+2348030000001") != 1 {
				t.Fatalf("after Redis is back: sent %d failed %d, OneRoute asked %d times; want 1 0 1", p.Sent, p.Failed, b.prov.times("+2348030000001"))
			}
		})
	}
}

// Redis errors, and only they, are not failures for asynq: a provider's
// transport error stays one even when its cause is a network error.
func TestIsFailureOfInfrastructureErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"redis connection reset", fmt.Errorf("claim 2 rows of c: %w", errRedisDown), false},
		{"redis loading", fmt.Errorf("record: %w", redis.Error(proto("LOADING Redis is loading the dataset in memory"))), false},
		{"redis read-only replica", fmt.Errorf("stamp: %w", redis.Error(proto("READONLY You can't write against a read only replica."))), false},
		{"redis pool timeout", redis.ErrPoolTimeout, false},
		{"the task's own deadline", fmt.Errorf("wait for permits: %w", context.DeadlineExceeded), true},
		{"script error", fmt.Errorf("record: %w", redis.Error(proto("ERR user_script:1: bad"))), true},
		{"provider transport error", &oneroute.TransportError{Op: "send", Err: errRedisDown}, true},
		{"provider 500", &oneroute.APIError{Status: 500}, true},
		{"plain", errors.New("boom"), true},
	} {
		if got := IsFailure(tc.err); got != tc.want {
			t.Errorf("%s: IsFailure(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// proto is a Redis error reply as go-redis returns it.
type proto string

func (p proto) Error() string { return string(p) }
func (p proto) RedisError()   {}
