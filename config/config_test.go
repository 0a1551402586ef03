package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/fanoutdev/fanout/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

const canary = "CANARY-7Q2XK9P-KEY"

// The API key never prints: not with %v, %+v, %#v, JSON, or zerolog.
func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(map[string]string{"ONEROUTE_API_KEY": canary}), "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OneRoute.APIKey.Reveal() != canary {
		t.Fatal("Reveal lost the key")
	}
	js, _ := json.Marshal(cfg)
	var logs bytes.Buffer
	zl := zerolog.New(&logs)
	zl.Info().Interface("config", cfg.Redacted()).Interface("raw", cfg).Msg("x")
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", cfg), "%+v": fmt.Sprintf("%+v", cfg), "%#v": fmt.Sprintf("%#v", cfg),
		"%s": cfg.OneRoute.APIKey.String(), "json": string(js), "zerolog": logs.String(),
	} {
		if strings.Contains(out, canary) {
			t.Errorf("%s leaks the key: %s", name, out)
		}
	}
}

// Every problem is reported at once, each naming the variable and the fix.
func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{
		"REDIS_URL": "http://x", "ONEROUTE_TIMEOUT": "soon", "FANOUT_CONCURRENCY": "many",
		"LOG_LEVEL": "loud", "FANOUT_SHUTDOWN_TIMEOUT": "5s", "FANOUT_BATCH_SIZE": "5000",
	}), "")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"REDIS_URL", "ONEROUTE_TIMEOUT", "FANOUT_CONCURRENCY", "LOG_LEVEL", "FANOUT_SHUTDOWN_TIMEOUT", "FANOUT_BATCH_SIZE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s:\n%v", want, err)
		}
	}
}

// Defaults hold with an empty environment, and the shutdown timeout outlasts
// the request timeout.
func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis.URL != "redis://127.0.0.1:6379/0" || cfg.OneRoute.BaseURL != "https://api.oneroute.io" ||
		cfg.Dispatch.BatchSize != 50 || cfg.Worker.ShutdownTimeout != 25*time.Second || cfg.Worker.MaxAttempts != 8 {
		t.Fatalf("defaults: %+v", cfg)
	}
	// Nothing set the batch size: the dispatcher chooses it per campaign.
	if cfg.Dispatch.BatchSizeSet {
		t.Fatal("BatchSizeSet with nothing set")
	}
	// A file that leaves batch_size out does not set it; the environment does.
	file := filepath.Join(t.TempDir(), "f.yaml")
	if err := os.WriteFile(file, []byte("dispatch:\n  window: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err = config.Load(env(nil), file); err != nil || cfg.Dispatch.BatchSizeSet || cfg.Dispatch.BatchSize != 50 {
		t.Fatalf("file without batch_size: batch %d set %v, %v", cfg.Dispatch.BatchSize, cfg.Dispatch.BatchSizeSet, err)
	}
	if cfg, err = config.Load(env(map[string]string{"FANOUT_BATCH_SIZE": "50"}), file); err != nil || !cfg.Dispatch.BatchSizeSet || cfg.Dispatch.BatchSize != 50 {
		t.Fatalf("FANOUT_BATCH_SIZE=50: batch %d set %v, %v", cfg.Dispatch.BatchSize, cfg.Dispatch.BatchSizeSet, err)
	}
	if err := cfg.RequireAPIKey(); err == nil || !strings.Contains(err.Error(), "fanout run --sandbox") {
		t.Fatalf("RequireAPIKey: %v", err)
	}
}

// The file sets values, the environment wins, and a key file is read.
func TestFileThenEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "fanout.yaml")
	if err := os.WriteFile(file, []byte("redis:\n  url: redis://file:6379/1\nworker:\n  concurrency: 7\nrate_limit:\n  per_second: 80\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(env(map[string]string{"FANOUT_CONCURRENCY": "9", "ONEROUTE_API_KEY_FILE": keyFile, "REDIS_URL": "rediss://u:secretpw@h:6380/2"}), file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Worker.Concurrency != 9 || cfg.RateLimit.PerSecond != 80 || cfg.OneRoute.APIKey.Reveal() != canary {
		t.Fatalf("got %+v", cfg)
	}
	if r := cfg.Redacted().Redis.URL; strings.Contains(r, "secretpw") {
		t.Fatalf("Redacted leaks the Redis password: %s", r)
	}
	if _, err := config.Load(env(nil), filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file: no error")
	}
	if err := os.WriteFile(file, []byte("worker:\n  concurency: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(env(nil), file); err == nil || !strings.Contains(err.Error(), "concurency") {
		t.Fatalf("unknown key: %v", err)
	}
}

// FANOUT_SPEC_ROOT (or dispatch.spec_root) is off by default, the
// environment wins over the file, and a root that is not an existing
// directory is reported with the other problems at once.
func TestSpecRoot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fileRoot, envRoot := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{fileRoot, envRoot} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "fanout.yaml")
	if err := os.WriteFile(file, []byte("dispatch:\n  spec_root: "+fileRoot+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		env     map[string]string
		file    string
		want    string
		wantErr []string // parts of the error; nil for none
	}{
		{name: "default is no confinement", want: ""},
		{name: "from the file", file: file, want: fileRoot},
		{name: "the environment wins", env: map[string]string{"FANOUT_SPEC_ROOT": envRoot}, file: file, want: envRoot},
		{name: "missing directory, reported with the rest",
			env:     map[string]string{"FANOUT_SPEC_ROOT": filepath.Join(dir, "nope"), "FANOUT_CONCURRENCY": "0"},
			wantErr: []string{"FANOUT_SPEC_ROOT", "nope", "unset it", "FANOUT_CONCURRENCY"}},
		{name: "a file, not a directory", env: map[string]string{"FANOUT_SPEC_ROOT": notDir},
			wantErr: []string{"FANOUT_SPEC_ROOT", "is not a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(env(tc.env), tc.file)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, spec root %q", cfg.Dispatch.SpecRoot)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Dispatch.SpecRoot != tc.want {
				t.Errorf("spec root %q, want %q", cfg.Dispatch.SpecRoot, tc.want)
			}
		})
	}
}

// A config file's explicit 0 is read, never dropped: kept where 0 means
// something (a window or a rate of 0 is no limit), refused where it means
// nothing (the old merge silently kept the default then); a key left out
// keeps its default, and queues replace the default weights whole.
func TestFileZeroIsKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f := write("zero.yaml", "dispatch:\n  window: 0\n  batch_size: 20\nrate_limit:\n  per_second: 0\n  burst: 0\nworker:\n  queues: {sms: 1, whatsapp: 1, email: 1, dlr: 1}\n")
	cfg, err := config.Load(env(nil), f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dispatch.Window != 0 || cfg.Dispatch.BatchSize != 20 || cfg.RateLimit.PerSecond != 0 || cfg.Worker.Concurrency != config.DefaultConcurrency {
		t.Fatalf("got window %d batch %d rate %d concurrency %d", cfg.Dispatch.Window, cfg.Dispatch.BatchSize, cfg.RateLimit.PerSecond, cfg.Worker.Concurrency)
	}
	if len(cfg.Worker.Queues) != 4 || cfg.Worker.Queues["sms"] != 1 {
		t.Fatalf("queues %v, want the file's weights only", cfg.Worker.Queues)
	}
	if !cfg.Dispatch.BatchSizeSet {
		t.Fatal("batch_size set by the file, but BatchSizeSet is false")
	}
	// A batch_size of 0 in the file is refused, as in the environment.
	f = write("batch0.yaml", "dispatch:\n  batch_size: 0\n")
	if _, err = config.Load(env(nil), f); err == nil || !strings.Contains(err.Error(), "FANOUT_BATCH_SIZE") {
		t.Fatalf("batch_size: 0: %v, want refused", err)
	}
	// A 0 over a non-zero default that means nothing is an error naming it.
	f = write("bad.yaml", "worker:\n  concurrency: 0\n  dlr_max_age: 0s\n")
	_, err = config.Load(env(nil), f)
	if err == nil || !strings.Contains(err.Error(), "FANOUT_CONCURRENCY") || !strings.Contains(err.Error(), "FANOUT_DLR_MAX_AGE") {
		t.Fatalf("explicit 0 concurrency and dlr_max_age: %v, want both refused", err)
	}
	// Zero limits beside a non-zero one: only the non-zero one limits.
	f = write("rate.yaml", "rate_limit:\n  per_second: 0\n  per_minute: 600\n")
	if cfg, err = config.Load(env(nil), f); err != nil || cfg.RateLimit.PerSecond != 0 || cfg.RateLimit.PerMinute != 600 {
		t.Fatalf("rate %+v %v", cfg.RateLimit, err)
	}
}

// The monitor's settings come from the environment or files named by the
// _FILE variables, its credentials never print, and malformed ones are
// refused with the variable's name and never its value.
func TestMonitorSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "viewer")
	if err := os.WriteFile(file, []byte("watch:"+canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(env(map[string]string{
		"FANOUT_MONITOR_ADDR": "0.0.0.0:9000", "FANOUT_MONITOR_AUTH": "ops:" + canary, "FANOUT_MONITOR_READONLY_AUTH_FILE": file,
		"FANOUT_MONITOR_READONLY": "true", "FANOUT_MONITOR_MAX_UPLOAD_MB": "5", "FANOUT_MONITOR_TOKEN": "tok-" + canary, "FANOUT_METRICS_ADDR": ":9090", "FANOUT_METRICS_RECENT": "30m",
	}), "")
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Monitor
	if m.Addr != "0.0.0.0:9000" || m.Auth.Reveal() != "ops:"+canary || m.ReadOnlyAuth.Reveal() != "watch:"+canary ||
		m.Token.Reveal() != "tok-"+canary || !m.ReadOnly || m.MaxUploadMB != 5 || m.MetricsAddr != ":9090" || m.MetricsRecent != 30*time.Minute {
		t.Errorf("monitor settings %+v", m)
	}
	js, _ := json.Marshal(cfg.Redacted())
	if strings.Contains(string(js)+fmt.Sprintf("%v %+v", cfg, cfg), canary) {
		t.Error("monitor credentials leak")
	}
	def, err := config.Load(env(nil), "")
	if err != nil || def.Monitor.Addr != config.DefaultMonitorAddr || def.Monitor.MetricsAddr != "" || def.Monitor.Auth != "" {
		t.Errorf("defaults %+v, %v", def.Monitor, err)
	}
	_, err = config.Load(env(map[string]string{
		"FANOUT_MONITOR_AUTH": canary, "FANOUT_MONITOR_TOKEN": "short", "FANOUT_MONITOR_READONLY": "maybe", "FANOUT_METRICS_ADDR": "9090", "FANOUT_MONITOR_READONLY_AUTH_FILE": filepath.Join(dir, "missing"),
	}), "")
	for _, want := range []string{"FANOUT_MONITOR_AUTH: want user:password", "FANOUT_MONITOR_TOKEN: use at least 16", "FANOUT_MONITOR_READONLY=", "FANOUT_METRICS_ADDR", "FANOUT_MONITOR_READONLY_AUTH_FILE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Error("the error shows the credentials")
	}
	_, err = config.Load(env(map[string]string{"FANOUT_MONITOR_AUTH": "ops:a", "FANOUT_MONITOR_READONLY_AUTH": "ops:b"}), "")
	if err == nil || !strings.Contains(err.Error(), "same user") {
		t.Errorf("same user for both: %v", err)
	}
}

// The webhook secret comes from ONEROUTE_WEBHOOK_SECRET or a file named by
// ONEROUTE_WEBHOOK_SECRET_FILE, and never prints.
func TestWebhookSecret(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "whsec")
	if err := os.WriteFile(file, []byte(canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, vars := range map[string]map[string]string{
		"env":  {"ONEROUTE_WEBHOOK_SECRET": canary},
		"file": {"ONEROUTE_WEBHOOK_SECRET_FILE": file},
	} {
		cfg, err := config.Load(env(vars), "")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.OneRoute.WebhookSecret.Reveal() != canary {
			t.Errorf("%s: secret %q not read", name, cfg.OneRoute.WebhookSecret.Reveal())
		}
		js, _ := json.Marshal(cfg)
		if out := fmt.Sprintf("%+v %s", cfg, js); strings.Contains(out, canary) {
			t.Errorf("%s: the webhook secret prints", name)
		}
	}
}
