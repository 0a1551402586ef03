package dispatcher

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
)

// reference dispatches the same file under another id without interruption
// and returns its batches' items: what every interrupted run must end with.
func (b *testBundle) reference(t *testing.T, specYAML, recipients string, o Options) ([][]campaigns.Item, Result) {
	t.Helper()
	spec := b.spec(t, "ref", specYAML, recipients)
	res, err := b.dispatch(t, context.Background(), spec, o)
	if err != nil {
		t.Fatal(err)
	}
	var items [][]campaigns.Item
	for _, bt := range b.tasks(t, spec) {
		items = append(items, bt.Items)
	}
	return items, res
}

// checkExactlyOnce asserts the campaign holds exactly one task per batch,
// batch n holding what the uninterrupted run's batch n holds, and that the
// store counted every recipient once.
func (b *testBundle) checkExactlyOnce(t *testing.T, spec campaigns.Spec, want [][]campaigns.Item, ref Result) {
	t.Helper()
	var got [][]campaigns.Item
	for i, bt := range b.tasks(t, spec) {
		if bt.Seq != i {
			t.Fatalf("batch %d missing or twice: task %d is batch %d", i, i, bt.Seq)
		}
		got = append(got, bt.Items)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("batches differ from the uninterrupted run (-want +got):\n%s", diff)
	}
	p, err := b.store.Progress(context.Background(), spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	gotCounts := []int64{p.Total, p.Batches, p.Invalid, p.Duplicates}
	wantCounts := []int64{int64(ref.Valid), int64(ref.Batches), int64(ref.Invalid), int64(ref.Duplicates)}
	if diff := cmp.Diff(wantCounts, gotCounts); diff != "" {
		t.Errorf("campaign total, batches, invalid, duplicates (-want +got):\n%s", diff)
	}
	if !p.Dispatched {
		t.Error("campaign not marked dispatched")
	}
}

// Dispatching the same file twice enqueues nothing the second time, and the
// second run skips to the end from the checkpoint.
func TestDispatchTwiceEnqueuesOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	csv := recipientsCSV(2000, 1)
	o := Options{BatchSize: 20, CheckpointEvery: 4}
	want, ref := b.reference(t, smsSpec, csv, o)
	spec := b.spec(t, "twice", smsSpec, csv)
	first, err := b.dispatch(t, context.Background(), spec, o)
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.dispatch(t, context.Background(), spec, o)
	if err != nil {
		t.Fatal(err)
	}
	if first.Enqueued != ref.Batches || second.Enqueued != 0 || second.Resumed != ref.Batches {
		t.Errorf("first run enqueued %d, second enqueued %d and resumed %d; want %d, 0, %d",
			first.Enqueued, second.Enqueued, second.Resumed, ref.Batches, ref.Batches)
	}
	if diff := cmp.Diff([]int{ref.Rows, ref.Valid, ref.Invalid, ref.Duplicates}, []int{second.Rows, second.Valid, second.Invalid, second.Duplicates}); diff != "" {
		t.Errorf("second run's counts (-want +got):\n%s", diff)
	}
	b.checkExactlyOnce(t, spec, want, ref)
}

// A crash at any point, including between a batch's enqueue and its
// record, or a cancellation, loses nothing and duplicates nothing: the
// re-run resumes from the checkpoint and ends with exactly the batches of an
// uninterrupted run.
func TestResumeAfterCrashOrCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	csv := recipientsCSV(3000, 2)
	o := Options{BatchSize: 25, CheckpointEvery: 3, Enqueuers: 4}
	want, ref := b.reference(t, smsSpec, csv, o)
	rng := rand.New(rand.NewPCG(42, 42))
	for i := 0; i < 8; i++ {
		at := rng.IntN(ref.Batches)
		crash := i%2 == 0
		name := "cancel-at-" + strconv.Itoa(at)
		if crash {
			name = "crash-at-" + strconv.Itoa(at)
		}
		t.Run(name, func(t *testing.T) {
			spec := b.spec(t, "c"+strconv.Itoa(i), smsSpec, csv)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			first := o
			if crash {
				first.crashAfterEnqueue = func(seq int) bool { return seq >= at }
			} else {
				first.crashAfterEnqueue = func(seq int) bool {
					if seq >= at {
						cancel()
					}
					return false
				}
			}
			_, err := b.dispatch(t, ctx, spec, first)
			if crash && !errors.Is(err, errSimulatedCrash) || !crash && err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("first run: %v", err)
			}
			res, err := b.dispatch(t, context.Background(), spec, o)
			if err != nil {
				t.Fatalf("re-run: %v", err)
			}
			if res.Enqueued+res.Resumed != ref.Batches {
				t.Errorf("re-run enqueued %d and resumed %d of %d batches", res.Enqueued, res.Resumed, ref.Batches)
			}
			b.checkExactlyOnce(t, spec, want, ref)
		})
	}
}

// A resumed run with a rejects report reads the file again from the start:
// the report lists every refused row, not only those after the checkpoint.
func TestResumeWithRejectsReportsEveryRow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	csv := recipientsCSV(1500, 3)
	o := Options{BatchSize: 10, CheckpointEvery: 2}
	want, ref := b.reference(t, smsSpec, csv, o)
	spec := b.spec(t, "rejects", smsSpec, csv)
	first := o
	first.crashAfterEnqueue = func(seq int) bool { return seq >= ref.Batches/2 }
	if _, err := b.dispatch(t, context.Background(), spec, first); !errors.Is(err, errSimulatedCrash) {
		t.Fatalf("first run: %v", err)
	}
	var rejects []Reject
	o.Reject = func(r Reject) { rejects = append(rejects, r) }
	res, err := b.dispatch(t, context.Background(), spec, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rejects) != ref.Invalid || res.Invalid != ref.Invalid {
		t.Errorf("re-run reported %d rejects (counted %d), want %d", len(rejects), res.Invalid, ref.Invalid)
	}
	b.checkExactlyOnce(t, spec, want, ref)
}

// A checkpoint taken on one file is not applied to another: the re-run
// stops with ErrFileChanged instead of skipping rows it never saw.
func TestResumeRefusesChangedFile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// One enqueuer: batches finish in order, so the crash at batch 20 comes
	// after the checkpoints of the batches before it.
	o := Options{BatchSize: 10, CheckpointEvery: 1, Enqueuers: 1}
	spec := b.spec(t, "changed", smsSpec, recipientsCSV(500, 4))
	first := o
	first.crashAfterEnqueue = func(seq int) bool { return seq >= 20 }
	if _, err := b.dispatch(t, context.Background(), spec, first); !errors.Is(err, errSimulatedCrash) {
		t.Fatalf("first run: %v", err)
	}
	spec = b.spec(t, "changed", smsSpec, recipientsCSV(500, 5))
	if _, err := b.dispatch(t, context.Background(), spec, o); !errors.Is(err, ErrFileChanged) {
		t.Fatalf("re-run on another file: %v, want ErrFileChanged", err)
	}
}

const helperEnv = "FANOUT_DISPATCH_HELPER"

// helperMain is the dispatcher process that TestResumeAfterKill kills: it
// dispatches the spec in $FANOUT_DISPATCH_HELPER into the Redis at
// $FANOUT_HELPER_REDIS, slowed down so the kill lands mid-way.
func helperMain() int {
	spec, err := campaigns.LoadSpec(os.Getenv(helperEnv))
	if err != nil {
		return 3
	}
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("FANOUT_HELPER_REDIS")})
	defer rdb.Close()
	src, err := recipients.OpenSource(spec.RecipientsPath(), recipients.SourceOptions{})
	if err != nil {
		return 3
	}
	enq := slowEnqueuer{asynq.NewClientFromRedisClient(rdb)}
	_, err = Dispatch(context.Background(), storage.New(rdb), enq, spec, src, Options{BatchSize: 10, CheckpointEvery: 3, Enqueuers: 2})
	if err != nil {
		return 1
	}
	return 0
}

type slowEnqueuer struct{ c *asynq.Client }

func (s slowEnqueuer) EnqueueContext(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	time.Sleep(500 * time.Microsecond) // the helper process only: room for the kill to land mid-way
	return s.c.EnqueueContext(ctx, t, opts...)
}

// SIGKILL at a random point of a real dispatcher process, then a re-run,
// leaves exactly one task per batch of valid recipients. Three kills in make
// test, ten under make chaos (FANOUT_CHAOS=1).
func TestResumeAfterKill(t *testing.T) {
	t.Parallel()
	b := setup(t)
	csv := recipientsCSV(8000, 6)
	o := Options{BatchSize: 10, CheckpointEvery: 3}
	want, ref := b.reference(t, smsSpec, csv, o)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills := 3
	if os.Getenv("FANOUT_CHAOS") == "1" {
		kills = 10 // make chaos-crash
	}
	for i := 0; i < kills; i++ {
		spec := b.spec(t, "kill"+strconv.Itoa(i), smsSpec, csv)
		at := 1 + rng.IntN(ref.Batches*3/4)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+spec.File(), "FANOUT_HELPER_REDIS="+b.srv.Addr)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		key := "fanout:{" + spec.ID + "}:b"
		killed := false
		deadline := time.After(60 * time.Second)
	watch:
		for {
			select {
			case err := <-exited:
				t.Fatalf("helper exited (%v) before the kill at batch %d", err, at)
			case <-deadline:
				cmd.Process.Kill()
				<-exited //nolint:errcheck // the helper was killed: its exit status says nothing
				t.Fatalf("helper did not reach batch %d", at)
			default:
			}
			if n, _ := b.rdb.HLen(context.Background(), key).Result(); int(n) >= at {
				cmd.Process.Signal(syscall.SIGKILL)
				<-exited //nolint:errcheck // the helper was killed: its exit status says nothing
				killed = true
				break watch
			}
			time.Sleep(time.Millisecond)
		}
		n, _ := b.rdb.HLen(context.Background(), key).Result()
		t.Logf("killed the dispatcher at %d of %d batches (asked for %d)", n, ref.Batches, at)
		if !killed {
			t.Fatal("not killed")
		}
		res, err := b.dispatch(t, context.Background(), spec, o)
		if err != nil {
			t.Fatalf("re-run after kill: %v", err)
		}
		if res.ResumedAt == 0 && n > int64(o.CheckpointEvery*2) {
			t.Errorf("re-run did not resume from a checkpoint (killed after %d batches)", n)
		}
		b.checkExactlyOnce(t, spec, want, ref)
	}
}

// A stream that breaks off (an unclosed quote; standard input cannot be
// prescanned like a file) is bad input, and the part already enqueued is
// held: the campaign is paused, never finished as if complete.
func TestBrokenStreamPausesTheCampaign(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.spec(t, "broken", smsSpec, recipientsCSV(10, 0))
	src, err := recipients.NewSource(strings.NewReader("phone,name\n08031234561,A\n\"08031234562,B\n08031234563,C\n"), recipients.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Dispatch(context.Background(), b.store, b.client, spec, src, Options{BatchSize: 1})
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "broke off at line 3") {
		t.Fatalf("got %v, want bad input naming line 3", err)
	}
	p, err := b.store.Progress(context.Background(), spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.State != campaigns.StatePaused || p.Dispatched {
		t.Fatalf("state %s dispatched %v, want paused and not finished", p.State, p.Dispatched)
	}
}

// A re-run cuts the file as the run that started the dispatch did, even
// when its own options would choose another batch size (an operator who
// changed FANOUT_BATCH_SIZE, a new version's defaults): batch n of the
// re-run is batch n of the first run, so the batches the first run may
// have enqueued are recognised, and no recipient is skipped or sent twice.
// A checkpoint without a recorded shape (written before it was recorded)
// resumes in the size its version used: the operator's, else 50.
func TestResumeKeepsTheBatchSize(t *testing.T) {
	t.Parallel()
	csv := recipientsCSV(1200, 5)
	for _, tc := range []struct {
		name          string
		first, rerun  int // Options.BatchSize of each run
		forgetTheSize bool
	}{
		{"operator changed the size", 30, 70, false},
		{"new default of 200", 30, 0, false},
		{"checkpoint of an older version", 50, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			o := Options{BatchSize: tc.first, CheckpointEvery: 2, Enqueuers: 2}
			want, ref := b.reference(t, smsSpec, csv, o)
			spec := b.spec(t, "keep", smsSpec, csv)
			o.crashAfterEnqueue = func(seq int) bool { return seq >= 7 }
			if _, err := b.dispatch(t, context.Background(), spec, o); !errors.Is(err, errSimulatedCrash) {
				t.Fatalf("first run: %v", err)
			}
			if tc.forgetTheSize {
				if err := b.rdb.HDel(context.Background(), "fanout:{"+spec.ID+"}:ckpt", "bs", "rq").Err(); err != nil {
					t.Fatal(err)
				}
			}
			res, err := b.dispatch(t, context.Background(), spec, Options{BatchSize: tc.rerun, CheckpointEvery: 2, Enqueuers: 2})
			if err != nil {
				t.Fatalf("re-run: %v", err)
			}
			if res.Enqueued+res.Resumed != ref.Batches {
				t.Errorf("re-run enqueued %d and resumed %d of %d batches", res.Enqueued, res.Resumed, ref.Batches)
			}
			b.checkExactlyOnce(t, spec, want, ref)
		})
	}
}
