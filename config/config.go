// Package config loads fanout's settings from the environment and an optional
// YAML file, validates them all at once, and redacts secrets.
//
//	cfg, err := config.Load(os.Getenv, "fanout.yaml")
//	log.Info().Interface("config", cfg.Redacted()).Msg("starting")
//
// The environment wins over the file. Only cmd/fanout reads the environment;
// every other package receives the typed sub-structs by value.
//
// Every default is written once, here. The defaults that fanout's packages
// also apply to a zero option (worker.Options, dispatcher.Options, a spec
// without batch_size) are exported constants, such as DefaultBatchSize,
// which those packages refer to. config imports none of fanout's packages,
// so importing it for these constants creates no cycle; no package but
// cmd/fanout calls Load.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Secret is a string that never prints: String, MarshalText and MarshalJSON
// give "[REDACTED]". Use Reveal where the value must be sent.
type Secret string

const redacted = "[REDACTED]"

func (s Secret) String() string { return mask(s) }

// GoString covers %#v.
func (s Secret) GoString() string { return mask(s) }

// MarshalText covers JSON, YAML and zerolog's Interface.
func (s Secret) MarshalText() ([]byte, error) { return []byte(mask(s)), nil }

// MarshalJSON prints the mask.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + mask(s) + `"`), nil }

// UnmarshalText reads a secret from a config file.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

func mask(s Secret) string {
	if s == "" {
		return ""
	}
	return redacted
}

// Defaults that fanout's packages share; each is documented on its field.
const (
	// DefaultOneRouteTimeout is OneRoute.Timeout's default.
	DefaultOneRouteTimeout = 15 * time.Second
	// ShutdownMargin is how much longer than the OneRoute timeout a
	// stopping worker waits by default (Worker.ShutdownTimeout).
	ShutdownMargin = 10 * time.Second
	// DefaultConcurrency is Worker.Concurrency's default.
	DefaultConcurrency = 50
	// DefaultInFlight is Worker.InFlight's default.
	DefaultInFlight = 512
	// DefaultTaskTimeout is Worker.TaskTimeout's default.
	DefaultTaskTimeout = 5 * time.Minute
	// DefaultMaxAttempts is Worker.MaxAttempts's default.
	DefaultMaxAttempts = 8
	// DefaultDLRInterval is Worker.DLRInterval's default.
	DefaultDLRInterval = 5 * time.Second
	// DefaultDLRMaxAge is Worker.DLRMaxAge's default.
	DefaultDLRMaxAge = 24 * time.Hour
	// DefaultPollInterval is Worker.PollInterval's default.
	DefaultPollInterval = 200 * time.Millisecond
	// DefaultStatusFallbackAfter is Worker.StatusFallbackAfter's default.
	DefaultStatusFallbackAfter = 2 * time.Minute
	// DefaultSessionMargin is Worker.SessionMargin's default.
	DefaultSessionMargin = 30 * time.Minute
	// DefaultBatchSize is Dispatch.BatchSize's default, and the batch size
	// a spec without batch_size is checked against.
	DefaultBatchSize = 50
	// DefaultUnlimitedBatchSize is the recipients per task of a campaign
	// with no rate limit, when neither its spec nor the operator
	// (FANOUT_BATCH_SIZE, dispatch.batch_size in the file, dispatch
	// --batch-size) sets a batch size, if its
	// batches go out as several requests: one per message
	// (campaigns.Channel.PerMessage), or batched calls of at most
	// DefaultBatchSize recipients each (campaigns.Channel.Chunked). Each
	// task costs the same fixed work whatever its size (an asynq dequeue
	// and acknowledgement, the claim, the record, the opt-out and loss
	// checks), about 650 µs of worker and Redis CPU on the 2-core benchmark
	// machine: 13 µs per message in tasks of 50, 3 in tasks of 200
	// (docs/benchmarks.md). A rate-limited campaign keeps DefaultBatchSize:
	// its speed is the limit's. So does a personalised email, whose
	// bodies (up to 256 KiB each) ride in the task.
	DefaultUnlimitedBatchSize = 200
	// DefaultMonitorAddr is Monitor.Addr's default: loopback only.
	DefaultMonitorAddr = "127.0.0.1:8080"
	// DefaultMonitorMaxUploadMB is Monitor.MaxUploadMB's default.
	DefaultMonitorMaxUploadMB = 100
	// DefaultMetricsRecent is Monitor.MetricsRecent's default.
	DefaultMetricsRecent = time.Hour
	// DefaultOptOutRegion is OptOut.Region's default.
	DefaultOptOutRegion = "NG"
)

// DefaultStopWords returns OptOut.StopWords' default, a new slice each
// call: STOP, UNSUBSCRIBE, STOPALL, CANCEL, END, QUIT.
func DefaultStopWords() []string {
	return []string{"STOP", "UNSUBSCRIBE", "STOPALL", "CANCEL", "END", "QUIT"}
}

// DefaultQueues returns Worker.Queues' default, a new map each call:
// sms=6, whatsapp=6, email=3, dlr=2.
func DefaultQueues() map[string]int {
	return map[string]int{"sms": 6, "whatsapp": 6, "email": 3, "dlr": 2}
}

// Config is every setting of fanout.
type Config struct {
	Redis     Redis     `yaml:"redis"`
	OneRoute  OneRoute  `yaml:"oneroute"`
	Log       Log       `yaml:"log"`
	Worker    Worker    `yaml:"worker"`
	Dispatch  Dispatch  `yaml:"dispatch"`
	RateLimit RateLimit `yaml:"rate_limit"`
	Monitor   Monitor   `yaml:"monitor"`
	OptOut    OptOut    `yaml:"optout"`
}

// OptOut configures how inbound replies opt customers out (worker.OptOuts).
type OptOut struct {
	// StopWords are the replies that opt the sender out, matched whole, in
	// any case, ignoring spaces and punctuation: env FANOUT_STOP_WORDS,
	// comma-separated; default STOP, UNSUBSCRIBE, STOPALL, CANCEL, END,
	// QUIT (DefaultStopWords).
	StopWords []string `yaml:"stop_words"`
	// Region reads an inbound sender's number that has no country code
	// (ISO 3166, e.g. NG): env FANOUT_OPTOUT_REGION; default NG
	// (DefaultOptOutRegion).
	Region string `yaml:"region"`
	// WhatsAppNumber is the business WhatsApp number customers write to:
	// the webhook receiver records each inbound WhatsApp message as opening
	// this number's 24-hour session window with its sender (OneRoute's
	// newMessage event does not say which number was written to): env
	// FANOUT_WHATSAPP_NUMBER; default none (no session windows recorded).
	WhatsAppNumber string `yaml:"whatsapp_number"`
}

// Redis locates the Redis that holds queues, ledger, counters and limits.
//
// One Redis by default; with SentinelMaster the master Sentinel names, with
// ClusterAddrs a Redis Cluster. The URL's user, password, database and
// scheme (rediss:// for TLS) apply in every topology; its host only to one
// Redis.
type Redis struct {
	// URL is redis://[user:pass@]host:port/db or rediss:// for TLS.
	// Env REDIS_URL; default redis://127.0.0.1:6379/0.
	URL string `yaml:"url"`
	// Username is the ACL user, instead of the URL's. Env REDIS_USERNAME;
	// default the URL's (none: the default user).
	Username string `yaml:"username"`
	// Password is the ACL user's (or requirepass) password, instead of the
	// URL's. Env REDIS_PASSWORD, or a file named by REDIS_PASSWORD_FILE;
	// default the URL's.
	Password Secret `yaml:"password"`
	// TLSCAFile is a PEM file of the CAs that sign the server's
	// certificate, instead of the system's; needs rediss://. Env
	// REDIS_TLS_CA_FILE; default none (the system's CAs).
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLSCertFile and TLSKeyFile are a PEM client certificate and its key,
	// for servers that ask for one (tls-auth-clients); both or neither;
	// need rediss://. Env REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE; default
	// none.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// SentinelMaster is the master's name in Sentinel (sentinel monitor
	// NAME ...); with SentinelAddrs. Env REDIS_SENTINEL_MASTER; default
	// none (no Sentinel).
	SentinelMaster string `yaml:"sentinel_master"`
	// SentinelAddrs are the Sentinels' host:port. Env REDIS_SENTINEL_ADDRS,
	// comma-separated; default none.
	SentinelAddrs []string `yaml:"sentinel_addrs"`
	// SentinelPassword is the Sentinels' own password (their requirepass),
	// when they have one. Env REDIS_SENTINEL_PASSWORD, or a file named by
	// REDIS_SENTINEL_PASSWORD_FILE; default none.
	SentinelPassword Secret `yaml:"sentinel_password"`
	// ClusterAddrs are some of a Redis Cluster's nodes (host:port); the
	// others are discovered. Env REDIS_CLUSTER_ADDRS, comma-separated;
	// default none (no Cluster). A Cluster has database 0 only.
	ClusterAddrs []string `yaml:"cluster_addrs"`
}

// OneRoute configures the API client.
type OneRoute struct {
	// BaseURL: env ONEROUTE_BASE_URL; default https://api.oneroute.io.
	BaseURL string `yaml:"base_url"`
	// APIKey: env ONEROUTE_API_KEY, or a file named by ONEROUTE_API_KEY_FILE
	// (a mounted secret). No default.
	APIKey Secret `yaml:"api_key"`
	// Timeout bounds one API request: env ONEROUTE_TIMEOUT; default 15s
	// (DefaultOneRouteTimeout).
	Timeout time.Duration `yaml:"timeout"`
	// WebhookSecret is the account's OneRoute secret key, which signs the
	// webhooks fanout receives (`fanout webhooks`, the monitor's
	// /webhooks/oneroute): env ONEROUTE_WEBHOOK_SECRET, or a file named by
	// ONEROUTE_WEBHOOK_SECRET_FILE. No default; without it no webhook is
	// accepted.
	WebhookSecret Secret `yaml:"webhook_secret"`
}

// Log configures logging.
type Log struct {
	// Level: env LOG_LEVEL (trace, debug, info, warn, error); default info.
	Level string `yaml:"level"`
	// Format: env LOG_FORMAT (json or console); default console on a
	// terminal, json otherwise.
	Format string `yaml:"format"`
}

// Worker configures the asynq server.
type Worker struct {
	// Concurrency is the number of tasks run at once: env
	// FANOUT_CONCURRENCY; default 50 (DefaultConcurrency).
	Concurrency int `yaml:"concurrency"`
	// InFlight bounds the per-message provider requests (personalised SMS)
	// one worker has in flight across all its tasks: env FANOUT_IN_FLIGHT;
	// default 512 (DefaultInFlight). At a provider latency L, one worker
	// sends at most InFlight/L such messages a second.
	InFlight int `yaml:"in_flight"`
	// ShutdownTimeout is how long a stopping worker waits for running tasks:
	// env FANOUT_SHUTDOWN_TIMEOUT; default the OneRoute timeout + 10s
	// (ShutdownMargin). Must be longer than the OneRoute timeout, so no send
	// outlives its task.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TaskTimeout bounds one task run: env FANOUT_TASK_TIMEOUT; default 5m
	// (DefaultTaskTimeout).
	TaskTimeout time.Duration `yaml:"task_timeout"`
	// MaxAttempts caps retries of temporary failures: env
	// FANOUT_MAX_ATTEMPTS; default 8 (DefaultMaxAttempts).
	MaxAttempts int `yaml:"max_attempts"`
	// Queues weights the channel queues: env FANOUT_QUEUES as
	// "sms=6,whatsapp=6,email=3,dlr=2"; default that (DefaultQueues).
	Queues map[string]int `yaml:"queues"`
	// DLRInterval is the first wait before a campaign's delivery-report
	// sweep, and the least time between its passes, which back off: env
	// FANOUT_DLR_INTERVAL; default 5s (DefaultDLRInterval).
	DLRInterval time.Duration `yaml:"dlr_interval"`
	// DLRMaxAge is how long a delivery report is awaited before the message
	// is counted dlr_expired: env FANOUT_DLR_MAX_AGE; default 24h
	// (DefaultDLRMaxAge). The provider-id index is kept an hour longer.
	DLRMaxAge time.Duration `yaml:"dlr_max_age"`
	// PollInterval is how often an idle worker looks for tasks, and how often
	// scheduled and retried tasks are moved: env FANOUT_POLL_INTERVAL;
	// default 200ms (DefaultPollInterval): a campaign enqueued to an idle
	// worker starts within about that; each idle worker runs a few
	// Redis scripts per check.
	PollInterval time.Duration `yaml:"poll_interval"`
	// NotifySecret keys the X-Fanout-Signature (hex HMAC-SHA512 of the
	// body) of the completion notices posted to a campaign's notify_url:
	// env FANOUT_NOTIFY_SECRET, or a file named by
	// FANOUT_NOTIFY_SECRET_FILE; default none (notices are sent unsigned).
	NotifySecret Secret `yaml:"notify_secret"`
	// StatusFallbackAfter is how long after a WhatsApp or email message was
	// sent its status may come by webhook before it is read from the Logs
	// API instead: env FANOUT_STATUS_FALLBACK_AFTER; default 2m
	// (DefaultStatusFallbackAfter).
	StatusFallbackAfter time.Duration `yaml:"status_fallback_after"`
	// SessionMargin is how much of a customer's 24-hour WhatsApp session
	// window must be left for a whatsapp_session campaign to send them the
	// session message rather than the fallback template: env
	// FANOUT_SESSION_MARGIN; default 30m (DefaultSessionMargin).
	SessionMargin time.Duration `yaml:"session_margin"`
}

// Dispatch configures expansion.
type Dispatch struct {
	// BatchSize is the recipients per task: env FANOUT_BATCH_SIZE; default 50
	// (DefaultBatchSize), or 200 (DefaultUnlimitedBatchSize) for a campaign
	// with no rate limit whose batches go out as several requests (except a
	// personalised email), unless BatchSizeSet. Retry rounds (fanout retry-failed) use BatchSize as it
	// is: 50 by default.
	BatchSize int `yaml:"batch_size"`
	// BatchSizeSet says the file or the environment set BatchSize: it then
	// applies to every campaign whose spec has no batch_size.
	BatchSizeSet bool `yaml:"-"`
	// Window is the most pending tasks a campaign keeps in Redis; 0 means no
	// limit: env FANOUT_WINDOW; default 0.
	Window int `yaml:"window"`
	// SpecRoot confines the files a campaign spec names (recipients,
	// suppress) to this existing directory and below; a path that leaves it
	// (../, an absolute path, a symbolic link) is refused. Required where
	// specs come from others, e.g. over HTTP: env FANOUT_SPEC_ROOT; default
	// "" (no confinement).
	SpecRoot string `yaml:"spec_root"`
	// MediaProbe makes dispatch ask each fixed media link of a spec (a
	// template header's url, a whatsapp_session media_url) for its content
	// type and size with a HEAD request, and refuse the spec when WhatsApp
	// would not take it: env FANOUT_MEDIA_PROBE; default false.
	MediaProbe bool `yaml:"media_probe"`
}

// RateLimit is the default limit per sender (channel id or from number);
// campaigns may override it with rate: in their spec. Zero means no limit.
// config imports none of fanout's packages, so this is a plain struct with
// the fields of campaigns.Rate, to which cmd/fanout converts it once.
type RateLimit struct {
	// PerSecond: env FANOUT_RATE_PER_SECOND; default 0.
	PerSecond int `yaml:"per_second"`
	// PerMinute: env FANOUT_RATE_PER_MINUTE; default 0.
	PerMinute int `yaml:"per_minute"`
	// PerDay: env FANOUT_RATE_PER_DAY; default 0.
	PerDay int `yaml:"per_day"`
	// Burst: env FANOUT_RATE_BURST; default the per-second limit.
	Burst int `yaml:"burst"`
}

// Monitor configures `fanout monitor` (dashboard, API, Asynq UI, metrics)
// and the worker's metrics and health port.
type Monitor struct {
	// Addr is where `fanout monitor` listens: env FANOUT_MONITOR_ADDR;
	// default 127.0.0.1:8080 (DefaultMonitorAddr). A non-loopback address
	// needs Auth or ReadOnlyAuth (or --insecure).
	Addr string `yaml:"addr"`
	// Auth is the operators' "user:password" for HTTP basic auth: env
	// FANOUT_MONITOR_AUTH, or a file named by FANOUT_MONITOR_AUTH_FILE. No
	// default.
	Auth Secret `yaml:"auth"`
	// ReadOnlyAuth is the viewers' "user:password": they see everything and
	// change nothing. Env FANOUT_MONITOR_READONLY_AUTH, or a file named by
	// FANOUT_MONITOR_READONLY_AUTH_FILE. No default.
	ReadOnlyAuth Secret `yaml:"readonly_auth"`
	// Token is a bearer token with the operators' rights, for scripts and
	// other services: env FANOUT_MONITOR_TOKEN, or a file named by
	// FANOUT_MONITOR_TOKEN_FILE. No default; at least 16 characters.
	Token Secret `yaml:"token"`
	// ReadOnly makes the whole monitor read-only, operators included (the
	// Asynq UI without its buttons, no pause, resume, cancel or submit):
	// env FANOUT_MONITOR_READONLY (true or false); default false.
	ReadOnly bool `yaml:"readonly"`
	// MaxUploadMB caps a campaign posted to the API (spec and recipient
	// file together), in MiB: env FANOUT_MONITOR_MAX_UPLOAD_MB; default 100
	// (DefaultMonitorMaxUploadMB).
	MaxUploadMB int `yaml:"max_upload_mb"`
	// MetricsRecent is how long a finished campaign keeps its own series in
	// /metrics: env FANOUT_METRICS_RECENT; default 1h (DefaultMetricsRecent).
	MetricsRecent time.Duration `yaml:"metrics_recent"`
	// MetricsAddr is where `fanout worker` serves /metrics, /healthz and
	// /readyz: env FANOUT_METRICS_ADDR, e.g. ":9090"; default "" (off).
	MetricsAddr string `yaml:"metrics_addr"`
}

// unsetBatch marks Dispatch.BatchSize while a file is decoded, to tell a
// batch_size the file sets from the default.
const unsetBatch = math.MinInt

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		Redis:    Redis{URL: "redis://127.0.0.1:6379/0"},
		OneRoute: OneRoute{BaseURL: "https://api.oneroute.io", Timeout: DefaultOneRouteTimeout},
		Log:      Log{Level: "info"},
		Worker: Worker{Concurrency: DefaultConcurrency, InFlight: DefaultInFlight, TaskTimeout: DefaultTaskTimeout, MaxAttempts: DefaultMaxAttempts,
			Queues: DefaultQueues(), DLRInterval: DefaultDLRInterval, DLRMaxAge: DefaultDLRMaxAge, PollInterval: DefaultPollInterval,
			StatusFallbackAfter: DefaultStatusFallbackAfter, SessionMargin: DefaultSessionMargin},
		Dispatch: Dispatch{BatchSize: DefaultBatchSize},
		Monitor:  Monitor{Addr: DefaultMonitorAddr, MaxUploadMB: DefaultMonitorMaxUploadMB, MetricsRecent: DefaultMetricsRecent},
		OptOut:   OptOut{StopWords: DefaultStopWords(), Region: DefaultOptOutRegion},
	}
}

// Load reads file (when not "") and then the environment through getenv, and
// validates the result, reporting every problem at once.
func Load(getenv func(string) string, file string) (Config, error) {
	cfg := Defaults()
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		var root yaml.Node
		if err := yaml.Unmarshal(data, &root); err != nil {
			return cfg, fmt.Errorf("config %s: %v", file, err)
		}
		if len(root.Content) > 0 {
			if err := wholeNumbers(root.Content[0], file); err != nil {
				return cfg, err
			}
		}
		// Decoded onto the defaults: a key the file sets wins, an explicit 0
		// or "" included (FANOUT_WINDOW's 0 is no limit, a rate's 0 none);
		// a key it leaves out keeps its default. Queues are replaced whole,
		// not merged with the default weights.
		cfg.Worker.Queues = nil
		cfg.Dispatch.BatchSize = unsetBatch
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %v", file, err)
		}
		if cfg.Worker.Queues == nil {
			cfg.Worker.Queues = DefaultQueues()
		}
		if cfg.Dispatch.BatchSize == unsetBatch {
			cfg.Dispatch.BatchSize = DefaultBatchSize
		} else {
			cfg.Dispatch.BatchSizeSet = true
		}
	}
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	num := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want a whole number", name, v))
				return
			}
			*dst = n
		}
	}
	dur := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want a duration such as 15s or 2m", name, v))
				return
			}
			*dst = d
		}
	}
	list := func(name string, dst *[]string) {
		if v := getenv(name); v != "" {
			*dst = nil
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					*dst = append(*dst, a)
				}
			}
		}
	}
	str("REDIS_URL", &cfg.Redis.URL)
	str("REDIS_USERNAME", &cfg.Redis.Username)
	str("REDIS_TLS_CA_FILE", &cfg.Redis.TLSCAFile)
	str("REDIS_TLS_CERT_FILE", &cfg.Redis.TLSCertFile)
	str("REDIS_TLS_KEY_FILE", &cfg.Redis.TLSKeyFile)
	str("REDIS_SENTINEL_MASTER", &cfg.Redis.SentinelMaster)
	list("REDIS_SENTINEL_ADDRS", &cfg.Redis.SentinelAddrs)
	list("REDIS_CLUSTER_ADDRS", &cfg.Redis.ClusterAddrs)
	str("ONEROUTE_BASE_URL", &cfg.OneRoute.BaseURL)
	if v := getenv("ONEROUTE_API_KEY"); v != "" {
		cfg.OneRoute.APIKey = Secret(strings.TrimSpace(v))
	} else if f := getenv("ONEROUTE_API_KEY_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("ONEROUTE_API_KEY_FILE: %w", err))
		} else {
			cfg.OneRoute.APIKey = Secret(strings.TrimSpace(string(b)))
		}
	}
	secret := func(name string, dst *Secret) {
		if v := getenv(name); v != "" {
			*dst = Secret(strings.TrimSpace(v))
		} else if f := getenv(name + "_FILE"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s_FILE: %w", name, err))
			} else {
				*dst = Secret(strings.TrimSpace(string(b)))
			}
		}
	}
	secret("REDIS_PASSWORD", &cfg.Redis.Password)
	secret("REDIS_SENTINEL_PASSWORD", &cfg.Redis.SentinelPassword)
	secret("FANOUT_NOTIFY_SECRET", &cfg.Worker.NotifySecret)
	secret("ONEROUTE_WEBHOOK_SECRET", &cfg.OneRoute.WebhookSecret)
	dur("ONEROUTE_TIMEOUT", &cfg.OneRoute.Timeout)
	str("LOG_LEVEL", &cfg.Log.Level)
	str("LOG_FORMAT", &cfg.Log.Format)
	num("FANOUT_CONCURRENCY", &cfg.Worker.Concurrency)
	num("FANOUT_IN_FLIGHT", &cfg.Worker.InFlight)
	dur("FANOUT_SHUTDOWN_TIMEOUT", &cfg.Worker.ShutdownTimeout)
	dur("FANOUT_TASK_TIMEOUT", &cfg.Worker.TaskTimeout)
	num("FANOUT_MAX_ATTEMPTS", &cfg.Worker.MaxAttempts)
	dur("FANOUT_DLR_INTERVAL", &cfg.Worker.DLRInterval)
	dur("FANOUT_DLR_MAX_AGE", &cfg.Worker.DLRMaxAge)
	dur("FANOUT_POLL_INTERVAL", &cfg.Worker.PollInterval)
	dur("FANOUT_STATUS_FALLBACK_AFTER", &cfg.Worker.StatusFallbackAfter)
	dur("FANOUT_SESSION_MARGIN", &cfg.Worker.SessionMargin)
	if v := getenv("FANOUT_MEDIA_PROBE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("FANOUT_MEDIA_PROBE=%q: want true or false", v))
		} else {
			cfg.Dispatch.MediaProbe = b
		}
	}
	if v := getenv("FANOUT_QUEUES"); v != "" {
		q, err := parseQueues(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("FANOUT_QUEUES=%q: %v", v, err))
		} else {
			cfg.Worker.Queues = q
		}
	}
	if getenv("FANOUT_BATCH_SIZE") != "" {
		num("FANOUT_BATCH_SIZE", &cfg.Dispatch.BatchSize)
		cfg.Dispatch.BatchSizeSet = true
	}
	num("FANOUT_WINDOW", &cfg.Dispatch.Window)
	str("FANOUT_SPEC_ROOT", &cfg.Dispatch.SpecRoot)
	num("FANOUT_RATE_PER_SECOND", &cfg.RateLimit.PerSecond)
	num("FANOUT_RATE_PER_MINUTE", &cfg.RateLimit.PerMinute)
	num("FANOUT_RATE_PER_DAY", &cfg.RateLimit.PerDay)
	num("FANOUT_RATE_BURST", &cfg.RateLimit.Burst)
	str("FANOUT_MONITOR_ADDR", &cfg.Monitor.Addr)
	secret("FANOUT_MONITOR_AUTH", &cfg.Monitor.Auth)
	secret("FANOUT_MONITOR_READONLY_AUTH", &cfg.Monitor.ReadOnlyAuth)
	secret("FANOUT_MONITOR_TOKEN", &cfg.Monitor.Token)
	if v := getenv("FANOUT_MONITOR_READONLY"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("FANOUT_MONITOR_READONLY=%q: want true or false", v))
		} else {
			cfg.Monitor.ReadOnly = b
		}
	}
	num("FANOUT_MONITOR_MAX_UPLOAD_MB", &cfg.Monitor.MaxUploadMB)
	dur("FANOUT_METRICS_RECENT", &cfg.Monitor.MetricsRecent)
	str("FANOUT_METRICS_ADDR", &cfg.Monitor.MetricsAddr)
	list("FANOUT_STOP_WORDS", &cfg.OptOut.StopWords)
	str("FANOUT_OPTOUT_REGION", &cfg.OptOut.Region)
	str("FANOUT_WHATSAPP_NUMBER", &cfg.OptOut.WhatsAppNumber)

	if cfg.Worker.ShutdownTimeout == 0 {
		cfg.Worker.ShutdownTimeout = cfg.OneRoute.Timeout + ShutdownMargin
	}
	errs = append(errs, cfg.validate()...)
	return cfg, errors.Join(errs...)
}

// wholeNumbers refuses fractional values: every number in the file is a
// whole number, and YAML decoding would silently cut "0.5" to 0.
func wholeNumbers(n *yaml.Node, file string) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!float" {
		return fmt.Errorf("config %s:%d: %s is not a whole number", file, n.Line, n.Value)
	}
	for _, c := range n.Content {
		if err := wholeNumbers(c, file); err != nil {
			return err
		}
	}
	return nil
}

// Queues lists the queues a worker must serve: one per channel, and the
// delivery-report polls.
var Queues = []string{"sms", "whatsapp", "email", "dlr"}

func parseQueues(v string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(v, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(w)
		if !ok || name == "" || err != nil || n < 1 {
			return nil, fmt.Errorf("want name=weight pairs such as sms=6,whatsapp=6,email=3,dlr=2")
		}
		out[name] = n
	}
	return out, nil
}

func checkQueues(q map[string]int) error {
	for name := range q {
		if !slices.Contains(Queues, name) {
			return fmt.Errorf("FANOUT_QUEUES: unknown queue %q; the queues are %s", name, strings.Join(Queues, ", "))
		}
	}
	for _, name := range Queues {
		if q[name] < 1 {
			return fmt.Errorf("FANOUT_QUEUES: queue %q is missing: a worker must serve %s, or its tasks wait forever", name, strings.Join(Queues, ", "))
		}
	}
	return nil
}

func (c Config) validate() []error {
	var errs []error
	errs = append(errs, c.Redis.validate()...)
	if u, err := url.Parse(c.OneRoute.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("ONEROUTE_BASE_URL %q: want https://host", c.OneRoute.BaseURL))
	}
	if c.OneRoute.Timeout <= 0 {
		errs = append(errs, errors.New("ONEROUTE_TIMEOUT must be positive"))
	}
	if err := checkQueues(c.Worker.Queues); err != nil {
		errs = append(errs, err)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "warning", "error", "trace":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL %q: use trace, debug, info, warn or error", c.Log.Level))
	}
	switch strings.ToLower(c.Log.Format) {
	case "", "json", "console":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT %q: use json or console", c.Log.Format))
	}
	if c.Worker.Concurrency < 1 {
		errs = append(errs, errors.New("FANOUT_CONCURRENCY must be at least 1"))
	}
	if c.Worker.InFlight < 1 {
		errs = append(errs, errors.New("FANOUT_IN_FLIGHT must be at least 1"))
	}
	if c.Worker.ShutdownTimeout <= c.OneRoute.Timeout {
		errs = append(errs, fmt.Errorf("FANOUT_SHUTDOWN_TIMEOUT (%s) must be longer than ONEROUTE_TIMEOUT (%s), or a stopping worker could abandon a send that then succeeds",
			c.Worker.ShutdownTimeout, c.OneRoute.Timeout))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"FANOUT_TASK_TIMEOUT", c.Worker.TaskTimeout}, {"FANOUT_DLR_INTERVAL", c.Worker.DLRInterval},
		{"FANOUT_DLR_MAX_AGE", c.Worker.DLRMaxAge}, {"FANOUT_POLL_INTERVAL", c.Worker.PollInterval},
		{"FANOUT_STATUS_FALLBACK_AFTER", c.Worker.StatusFallbackAfter}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s (%s) must be positive; leave it out for the default", d.name, d.v))
		}
	}
	if c.Worker.SessionMargin <= 0 || c.Worker.SessionMargin >= 24*time.Hour {
		errs = append(errs, fmt.Errorf("FANOUT_SESSION_MARGIN (%s) must be positive and under 24h", c.Worker.SessionMargin))
	}
	if c.Worker.MaxAttempts < 1 {
		errs = append(errs, errors.New("FANOUT_MAX_ATTEMPTS must be at least 1"))
	}
	if c.Dispatch.BatchSize < 1 || c.Dispatch.BatchSize > 1000 {
		errs = append(errs, errors.New("FANOUT_BATCH_SIZE must be between 1 and 1000"))
	}
	if c.Dispatch.Window < 0 {
		errs = append(errs, errors.New("FANOUT_WINDOW cannot be negative (0 means no limit)"))
	}
	if c.Dispatch.SpecRoot != "" {
		if fi, err := os.Stat(c.Dispatch.SpecRoot); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is in the message already
			}
			errs = append(errs, fmt.Errorf("FANOUT_SPEC_ROOT %q: %v; set it to the existing directory that holds the campaign files, or unset it", c.Dispatch.SpecRoot, err))
		} else if !fi.IsDir() {
			errs = append(errs, fmt.Errorf("FANOUT_SPEC_ROOT %q is not a directory; set it to the directory that holds the campaign files, or unset it", c.Dispatch.SpecRoot))
		}
	}
	for name, cap := range map[string]int{"FANOUT_RATE_PER_MINUTE": c.RateLimit.PerMinute, "FANOUT_RATE_PER_DAY": c.RateLimit.PerDay} {
		if cap > 0 && c.Dispatch.BatchSize > cap {
			errs = append(errs, fmt.Errorf("FANOUT_BATCH_SIZE (%d) is larger than %s (%d): a batch could never be sent; lower the batch size", c.Dispatch.BatchSize, name, cap))
		}
	}
	if c.RateLimit.PerSecond < 0 || c.RateLimit.PerMinute < 0 || c.RateLimit.PerDay < 0 || c.RateLimit.Burst < 0 {
		errs = append(errs, errors.New("FANOUT_RATE_* limits cannot be negative"))
	}
	return append(errs, c.Monitor.validate()...)
}

func (m Monitor) validate() []error {
	var errs []error
	for name, v := range map[string]Secret{"FANOUT_MONITOR_AUTH": m.Auth, "FANOUT_MONITOR_READONLY_AUTH": m.ReadOnlyAuth} {
		if v == "" {
			continue
		}
		if user, pass, ok := strings.Cut(v.Reveal(), ":"); !ok || user == "" || pass == "" {
			errs = append(errs, fmt.Errorf("%s: want user:password, both non-empty (the value is not shown)", name))
		}
	}
	if m.Auth != "" && m.ReadOnlyAuth != "" {
		if ou, _, _ := strings.Cut(m.Auth.Reveal(), ":"); strings.HasPrefix(m.ReadOnlyAuth.Reveal(), ou+":") {
			errs = append(errs, errors.New("FANOUT_MONITOR_AUTH and FANOUT_MONITOR_READONLY_AUTH name the same user: give viewers another user name"))
		}
	}
	if m.Token != "" && len(m.Token.Reveal()) < 16 {
		errs = append(errs, errors.New("FANOUT_MONITOR_TOKEN: use at least 16 characters (the value is not shown)"))
	}
	if m.MaxUploadMB < 1 {
		errs = append(errs, errors.New("FANOUT_MONITOR_MAX_UPLOAD_MB must be at least 1"))
	}
	if m.MetricsRecent <= 0 {
		errs = append(errs, errors.New("FANOUT_METRICS_RECENT must be positive, such as 1h"))
	}
	for name, addr := range map[string]string{"FANOUT_MONITOR_ADDR": m.Addr, "FANOUT_METRICS_ADDR": m.MetricsAddr} {
		if addr == "" && name == "FANOUT_METRICS_ADDR" {
			continue
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("%s %q: want host:port, such as 127.0.0.1:8080 or :9090", name, addr))
		}
	}
	return errs
}

// ErrNoAPIKey is returned by RequireAPIKey.
var ErrNoAPIKey = errors.New("ONEROUTE_API_KEY is not set: export ONEROUTE_API_KEY (or ONEROUTE_API_KEY_FILE) with your OneRoute key; to try fanout without one, run `fanout run --sandbox CAMPAIGN.yaml`")

// RequireAPIKey fails when no API key is configured. Nothing ever falls back
// to the sandbox silently.
func (c Config) RequireAPIKey() error {
	if c.OneRoute.APIKey == "" {
		return ErrNoAPIKey
	}
	return nil
}

func (r Redis) validate() []error {
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return []error{fmt.Errorf("REDIS_URL %q: want redis://host:port/db or rediss://host:port/db", redactURL(r.URL))}
	}
	var errs []error
	for _, f := range []struct{ name, path string }{
		{"REDIS_TLS_CA_FILE", r.TLSCAFile}, {"REDIS_TLS_CERT_FILE", r.TLSCertFile}, {"REDIS_TLS_KEY_FILE", r.TLSKeyFile},
	} {
		if f.path == "" {
			continue
		}
		if u.Scheme != "rediss" {
			errs = append(errs, fmt.Errorf("%s is set but REDIS_URL is redis://: write rediss:// for TLS", f.name))
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	if (r.TLSCertFile == "") != (r.TLSKeyFile == "") {
		errs = append(errs, errors.New("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together: set both for a client certificate, or neither"))
	}
	if (r.SentinelMaster == "") != (len(r.SentinelAddrs) == 0) {
		errs = append(errs, errors.New("REDIS_SENTINEL_MASTER and REDIS_SENTINEL_ADDRS go together: the master's name and the Sentinels' host:port list"))
	}
	if r.SentinelMaster != "" && len(r.ClusterAddrs) > 0 {
		errs = append(errs, errors.New("REDIS_SENTINEL_MASTER and REDIS_CLUSTER_ADDRS are both set: choose Sentinel or Cluster"))
	}
	if len(r.ClusterAddrs) > 0 && strings.Trim(u.Path, "/") != "" && strings.Trim(u.Path, "/") != "0" {
		errs = append(errs, fmt.Errorf("REDIS_URL %q names database %s, but a Redis Cluster has database 0 only", redactURL(r.URL), strings.Trim(u.Path, "/")))
	}
	for _, l := range []struct {
		name  string
		addrs []string
	}{{"REDIS_SENTINEL_ADDRS", r.SentinelAddrs}, {"REDIS_CLUSTER_ADDRS", r.ClusterAddrs}} {
		for _, a := range l.addrs {
			if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
				errs = append(errs, fmt.Errorf("%s: %q is not host:port", l.name, a))
			}
		}
	}
	return errs
}

// Redacted returns a copy safe to log: secrets masked, Redis password hidden.
func (c Config) Redacted() Config {
	r := c
	r.Redis.URL = redactURL(c.Redis.URL)
	return r
}

var userinfoRe = regexp.MustCompile(`//[^/@]*@`)

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		// Unparsable: hide whatever stands before an '@'.
		return userinfoRe.ReplaceAllString(s, "//xxxxx@")
	}
	if u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
