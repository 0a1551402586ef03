package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/config"
	"github.com/fanoutdev/fanout/internal/redistest"
)

func loadRedisConfig(t *testing.T, env map[string]string) config.Redis {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] }, "")
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	return cfg.Redis
}

// Each topology gives the client and asynq's options of that topology, with
// the same user, password and database: an ACL username set apart from the
// URL reaches asynq too (asynq's own URI parser would drop it).
func TestRedisTopologyOptions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		want asynq.RedisConnOpt
	}{
		{"one Redis, user in the URL", map[string]string{"REDIS_URL": "redis://app:pw@10.0.0.5:6380/3"},
			asynq.RedisClientOpt{Network: "tcp", Addr: "10.0.0.5:6380", Username: "app", Password: "pw", DB: 3}},
		{"ACL user apart from the URL", map[string]string{"REDIS_URL": "redis://10.0.0.5:6379/0", "REDIS_USERNAME": "fanout", "REDIS_PASSWORD": "s3cret"},
			asynq.RedisClientOpt{Network: "tcp", Addr: "10.0.0.5:6379", Username: "fanout", Password: "s3cret"}},
		{"Sentinel", map[string]string{"REDIS_URL": "redis://:pw@unused:6379/2", "REDIS_SENTINEL_MASTER": "main", "REDIS_SENTINEL_ADDRS": "s1:26379, s2:26379", "REDIS_SENTINEL_PASSWORD": "spw"},
			asynq.RedisFailoverClientOpt{MasterName: "main", SentinelAddrs: []string{"s1:26379", "s2:26379"}, SentinelPassword: "spw", Password: "pw", DB: 2}},
		{"Cluster", map[string]string{"REDIS_URL": "redis://unused:6379/0", "REDIS_USERNAME": "fanout", "REDIS_PASSWORD": "pw", "REDIS_CLUSTER_ADDRS": "n1:7000,n2:7000,n3:7000"},
			asynq.RedisClusterClientOpt{Addrs: []string{"n1:7000", "n2:7000", "n3:7000"}, Username: "fanout", Password: "pw"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rc := loadRedisConfig(t, c.env)
			got, err := asynqRedisOpt(rc)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("asynq options (-want +got):\n%s", diff)
			}
			rdb, err := newRedis(rc, 7)
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			var kind string
			switch r := rdb.(type) {
			case *redis.ClusterClient:
				kind = "cluster"
			case *redis.Client:
				kind = "one"
				if c.env["REDIS_SENTINEL_MASTER"] != "" {
					kind = "failover" // go-redis's failover client is a *redis.Client
				}
				if r.Options().PoolSize != 7 || r.Options().Username != usernameOf(c.want) {
					t.Errorf("client options: pool %d user %q", r.Options().PoolSize, r.Options().Username)
				}
			}
			wantKind := map[string]string{"one Redis, user in the URL": "one", "ACL user apart from the URL": "one", "Sentinel": "failover", "Cluster": "cluster"}[c.name]
			if kind != wantKind {
				t.Errorf("client %T, want the %s topology", rdb, wantKind)
			}
		})
	}
}

func usernameOf(o asynq.RedisConnOpt) string {
	switch o := o.(type) {
	case asynq.RedisClientOpt:
		return o.Username
	case asynq.RedisFailoverClientOpt:
		return o.Username
	case asynq.RedisClusterClientOpt:
		return o.Username
	}
	return ""
}

// Every Redis setting that cannot work is refused at start-up, all at
// once, naming the variable and the fix.
func TestRedisSettingsRefused(t *testing.T) {
	t.Parallel()
	ca := writeCA(t)
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"TLS files without rediss", map[string]string{"REDIS_URL": "redis://h:6379/0", "REDIS_TLS_CA_FILE": ca}, []string{"REDIS_TLS_CA_FILE is set but REDIS_URL is redis://: write rediss:// for TLS"}},
		{"missing CA file", map[string]string{"REDIS_URL": "rediss://h:6379/0", "REDIS_TLS_CA_FILE": "/nonexistent/ca.pem"}, []string{"REDIS_TLS_CA_FILE: stat /nonexistent/ca.pem"}},
		{"cert without key", map[string]string{"REDIS_URL": "rediss://h:6379/0", "REDIS_TLS_CERT_FILE": ca}, []string{"REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together"}},
		{"master without sentinels", map[string]string{"REDIS_SENTINEL_MASTER": "m"}, []string{"REDIS_SENTINEL_MASTER and REDIS_SENTINEL_ADDRS go together"}},
		{"sentinel and cluster", map[string]string{"REDIS_SENTINEL_MASTER": "m", "REDIS_SENTINEL_ADDRS": "s:26379", "REDIS_CLUSTER_ADDRS": "n:7000"}, []string{"choose Sentinel or Cluster"}},
		{"cluster with a database", map[string]string{"REDIS_URL": "redis://:pw@h:6379/4", "REDIS_CLUSTER_ADDRS": "n:7000"}, []string{`REDIS_URL "redis://:xxxxx@h:6379/4" names database 4, but a Redis Cluster has database 0 only`}},
		{"address without port", map[string]string{"REDIS_CLUSTER_ADDRS": "n1:7000,n2"}, []string{`REDIS_CLUSTER_ADDRS: "n2" is not host:port`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(func(k string) string { return c.env[k] }, "")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), ":pw@") {
				t.Errorf("error shows the password: %q", err)
			}
		})
	}
}

// writeCA writes a self-signed CA certificate and its key as PEM files and
// returns the certificate's path (the key is beside it, ca-key.pem).
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fanout test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath
}

// rediss:// with REDIS_TLS_CA_FILE trusts that CA only, and the client
// certificate pair is presented; asynq gets the same TLS settings.
func TestRedisTLSFiles(t *testing.T) {
	t.Parallel()
	ca := writeCA(t)
	rc := loadRedisConfig(t, map[string]string{"REDIS_URL": "rediss://redis.internal:6380/0", "REDIS_TLS_CA_FILE": ca,
		"REDIS_TLS_CERT_FILE": ca, "REDIS_TLS_KEY_FILE": filepath.Join(filepath.Dir(ca), "ca-key.pem")})
	opt, err := redisBase(rc)
	if err != nil {
		t.Fatal(err)
	}
	if opt.TLSConfig == nil || opt.TLSConfig.RootCAs == nil || len(opt.TLSConfig.Certificates) != 1 || opt.TLSConfig.ServerName != "redis.internal" {
		t.Fatalf("TLS config %+v: want the CA pool, one client certificate and the server name", opt.TLSConfig)
	}
	a, err := asynqRedisOpt(rc)
	if err != nil {
		t.Fatal(err)
	}
	if tc := a.(asynq.RedisClientOpt).TLSConfig; tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 {
		t.Errorf("asynq's TLS config %+v lacks the CA or the client certificate", tc)
	}
	bad := rc
	bad.TLSCAFile = filepath.Join(filepath.Dir(ca), "ca-key.pem")
	if _, err := redisBase(bad); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a CA file without a certificate: err = %v", err)
	}
}

// An ACL user given apart from the URL reaches both the go-redis client and
// asynq's own connections on a real redis-server whose default user is
// off; without the username asynq could not connect.
func TestRedisACLUserReachesAsynq(t *testing.T) {
	t.Parallel()
	srv := redistest.StartWith(t, redistest.Options{RequireReal: true})
	ctx := context.Background()
	admin := srv.Client(t)
	if err := admin.Do(ctx, "ACL", "SETUSER", "fanout", "on", ">s3cret-pw", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "default", "off").Err(); err != nil {
		t.Fatal(err)
	}
	rc := loadRedisConfig(t, map[string]string{"REDIS_URL": srv.URL(), "REDIS_USERNAME": "fanout", "REDIS_PASSWORD": "s3cret-pw"})
	rdb, err := openRedis(ctx, rc, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if who, err := rdb.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || who != "fanout" {
		t.Fatalf("ACL WHOAMI = %q, %v; want fanout", who, err)
	}
	opt, err := asynqRedisOpt(rc)
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(opt)
	defer client.Close()
	if _, err := client.Enqueue(asynq.NewTask("test:acl", nil), asynq.Queue("acltest")); err != nil {
		t.Fatalf("asynq with the ACL user: %v", err)
	}
	noUser := asynq.NewClient(asynq.RedisClientOpt{Addr: srv.Addr, Password: "s3cret-pw"})
	defer noUser.Close()
	if _, err := noUser.Enqueue(asynq.NewTask("test:acl", nil), asynq.Queue("acltest")); err == nil {
		t.Fatal("asynq without the username connected: the test cannot tell the username is needed")
	}
}

// With REDIS_SENTINEL_MASTER and REDIS_SENTINEL_ADDRS, fanout's client and
// asynq's both find the master through a real Sentinel and write there.
func TestRedisSentinelFindsMaster(t *testing.T) {
	t.Parallel()
	master := redistest.StartWith(t, redistest.Options{RequireReal: true})
	sentinel := startSentinel(t, master.Addr)
	ctx := context.Background()
	rc := loadRedisConfig(t, map[string]string{"REDIS_URL": "redis://unused.invalid:6379/0",
		"REDIS_SENTINEL_MASTER": "fanoutm", "REDIS_SENTINEL_ADDRS": sentinel})
	rdb, err := openRedis(ctx, rc, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Set(ctx, "fanout:sentinel-test", "via-sentinel", 0).Err(); err != nil {
		t.Fatal(err)
	}
	direct := master.Client(t)
	if v, err := direct.Get(ctx, "fanout:sentinel-test").Result(); err != nil || v != "via-sentinel" {
		t.Fatalf("the master has %q, %v: the write did not go through Sentinel to it", v, err)
	}
	opt, err := asynqRedisOpt(rc)
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(opt)
	defer client.Close()
	if _, err := client.Enqueue(asynq.NewTask("test:sentinel", nil), asynq.Queue("sentineltest")); err != nil {
		t.Fatal(err)
	}
	if n, err := direct.LLen(ctx, "asynq:{sentineltest}:pending").Result(); err != nil || n != 1 {
		t.Fatalf("asynq:{sentineltest}:pending on the master has %d tasks (%v), want 1", n, err)
	}
}

// startSentinel runs redis-server --sentinel on a free port watching the
// master at masterAddr as "fanoutm", and returns its address once it
// knows the master.
func startSentinel(t *testing.T, masterAddr string) string {
	t.Helper()
	bin := redistest.Binary()
	if bin == "" {
		t.Skip("redis-server is not installed: Sentinel not tested")
	}
	host, port, _ := strings.Cut(masterAddr, ":")
	p, dir := freeTestPort(t), t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	body := "port " + strconv.Itoa(p) + "\nbind 127.0.0.1\ndir " + dir + "\nlogfile " + filepath.Join(dir, "sentinel.log") +
		"\nsentinel monitor fanoutm " + host + " " + port + " 1\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	runRedisServer(t, bin, conf, "--sentinel")
	addr := "127.0.0.1:" + strconv.Itoa(p)
	s := redis.NewSentinelClient(&redis.Options{Addr: addr})
	defer s.Close()
	waitFor(t, "Sentinel knowing the master", func() bool {
		got, err := s.GetMasterAddrByName(context.Background(), "fanoutm").Result()
		return err == nil && len(got) == 2 && got[1] == port
	})
	return addr
}

func freeTestPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A Redis with a password refuses fanout without it, and with a wrong one:
// the command fails, says authentication is what failed, and never prints
// the password it was given; with the password it works.
func TestRedisPasswordRequired(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	mr.RequireAuth("canary-redis-pw-7f3a")
	for _, c := range []struct {
		name, url string
		ok        bool
	}{
		{"no password", "redis://" + mr.Addr() + "/0", false},
		{"wrong password", "redis://:wrong-pw-91c2@" + mr.Addr() + "/0", false},
		{"the password", "redis://:canary-redis-pw-7f3a@" + mr.Addr() + "/0", true},
	} {
		b := setup(t)
		b.env["REDIS_URL"] = c.url
		code := b.run(t, "list", "--json")
		out := b.stdout.String() + b.stderr.String()
		if c.ok != (code == exitOK) {
			t.Errorf("%s: exit %d\n%s", c.name, code, out)
			continue
		}
		if !c.ok && !strings.Contains(strings.ToLower(out), "auth") {
			t.Errorf("%s: the error does not say authentication failed: %s", c.name, out)
		}
		if strings.Contains(out, "canary-redis-pw-7f3a") || strings.Contains(out, "wrong-pw-91c2") {
			t.Errorf("%s: the password appears in the output: %s", c.name, out)
		}
	}
}
