package dispatcher

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/internal/redistest"
	"github.com/fanoutdev/fanout/recipients"
	"github.com/fanoutdev/fanout/storage"
	"github.com/fanoutdev/fanout/tasks"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	goleak.VerifyTestMain(m,
		// go-redis pools of the per-test clients close after the last test.
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// testBundle is a private Redis with the dispatcher's collaborators.
type testBundle struct {
	srv    *redistest.Server
	rdb    *redis.Client
	store  *storage.Store
	client *asynq.Client
	insp   *asynq.Inspector
	dir    string
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	return &testBundle{srv: srv, rdb: rdb, store: storage.New(rdb),
		client: asynq.NewClientFromRedisClient(rdb), insp: asynq.NewInspectorFromRedisClient(rdb), dir: t.TempDir()}
}

// spec writes a recipients file and a spec naming it, and loads the spec.
func (b *testBundle) spec(t *testing.T, id, specYAML, recipients string) campaigns.Spec {
	t.Helper()
	dir := filepath.Join(b.dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "recipients.csv"), []byte(recipients), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "campaign.yaml")
	text := "id: " + id + "\nrecipients: recipients.csv\n" + specYAML
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := campaigns.LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func openSource(t testing.TB, spec campaigns.Spec) recipients.Source {
	t.Helper()
	src, err := recipients.OpenSource(spec.RecipientsPath(), recipients.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func (b *testBundle) dispatch(t *testing.T, ctx context.Context, spec campaigns.Spec, o Options) (Result, error) {
	t.Helper()
	src := openSource(t, spec)
	return Dispatch(ctx, b.store, b.client, spec, src, o)
}

// tasks lists the campaign's pending send tasks, decoded, in batch order, and
// fails on a task id that is not the batch's deterministic one.
func (b *testBundle) tasks(t *testing.T, spec campaigns.Spec) []campaigns.Batch {
	t.Helper()
	var out []campaigns.Batch
	for page := 1; ; page++ {
		infos, err := b.insp.ListPendingTasks(tasks.Queue(spec.Channel), asynq.PageSize(1000), asynq.Page(page))
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range infos {
			var bt campaigns.Batch
			if err := tasks.Decode(ti.Payload, &bt); err != nil {
				t.Fatal(err)
			}
			if bt.Campaign != spec.ID {
				continue
			}
			if ti.ID != tasks.BatchID(&bt) {
				t.Errorf("task %s holds batch %s", ti.ID, tasks.BatchID(&bt))
			}
			out = append(out, bt)
		}
		if len(infos) < 1000 {
			break
		}
	}
	slices.SortFunc(out, func(a, b campaigns.Batch) int { return a.Seq - b.Seq })
	return out
}

// recipientsCSV writes n rows of mixed phone formats with about 5%
// duplicates (written another way) and 3% invalid numbers.
func recipientsCSV(n int, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 7))
	var sb strings.Builder
	sb.WriteString("phone,name\n")
	var used []string
	for i := 0; i < n; i++ {
		var nsn string
		switch p := rng.IntN(100); {
		case p < 5 && len(used) > 0:
			nsn = used[rng.IntN(len(used))]
		case p < 8:
			fmt.Fprintf(&sb, "12%d,Bad %d\n", rng.IntN(1000), i)
			continue
		default:
			nsn = fmt.Sprintf("80%d%07d", 3+rng.IntN(7), rng.IntN(10000000))
			used = append(used, nsn)
		}
		switch rng.IntN(3) {
		case 0:
			fmt.Fprintf(&sb, "0%s,Person %d\n", nsn, i)
		case 1:
			fmt.Fprintf(&sb, "+234%s,Person %d\n", nsn, i)
		default:
			fmt.Fprintf(&sb, "234%s,Person %d\n", nsn, i)
		}
	}
	return sb.String()
}

const smsSpec = `channel: sms
channel_id: ch-1
message: "Hi {{.name}}"
`
