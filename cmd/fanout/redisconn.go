package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/fanoutdev/fanout/config"
)

// redisBase is what every topology shares: the URL's user, password,
// database and TLS, with REDIS_USERNAME, REDIS_PASSWORD and the TLS files
// applied. go-redis's ParseURL keeps the URL's user (asynq's parser drops
// it), and asynq gets its options from here too, so an ACL user reaches
// both.
func redisBase(c config.Redis) (*redis.Options, error) {
	opt, err := redis.ParseURL(c.URL)
	if err != nil {
		return nil, &inputError{fmt.Errorf("REDIS_URL: %v", err)}
	}
	if c.Username != "" {
		opt.Username = c.Username
	}
	if c.Password != "" {
		opt.Password = c.Password.Reveal()
	}
	if opt.TLSConfig == nil {
		return opt, nil
	}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, &inputError{fmt.Errorf("REDIS_TLS_CA_FILE: %w", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &inputError{fmt.Errorf("REDIS_TLS_CA_FILE %s: no PEM certificate in it", c.TLSCAFile)}
		}
		opt.TLSConfig.RootCAs = pool
	}
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, &inputError{fmt.Errorf("REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE: %w", err)}
		}
		opt.TLSConfig.Certificates = []tls.Certificate{cert}
	}
	return opt, nil
}

// redisWhere names the Redis of c for messages, without secrets.
func redisWhere(c config.Redis) string {
	switch {
	case c.SentinelMaster != "":
		return fmt.Sprintf("Sentinel master %q (Sentinels %s)", c.SentinelMaster, strings.Join(c.SentinelAddrs, ","))
	case len(c.ClusterAddrs) > 0:
		return "Cluster " + strings.Join(c.ClusterAddrs, ",")
	}
	if opt, err := redis.ParseURL(c.URL); err == nil {
		return opt.Addr
	}
	return "REDIS_URL"
}

// newRedis builds the one client of c's topology: one Redis, a Sentinel
// master (failover), or a Cluster. Every part of fanout (asynq, the ledger,
// the counters, the rate limiter) uses it; their multi-key scripts keep
// their keys in one hash slot ({campaign id}, {sender}).
func newRedis(c config.Redis, poolSize int) (redis.UniversalClient, error) {
	opt, err := redisBase(c)
	if err != nil {
		return nil, err
	}
	if poolSize > 0 {
		opt.PoolSize = poolSize
	}
	switch {
	case c.SentinelMaster != "":
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: c.SentinelMaster, SentinelAddrs: c.SentinelAddrs, SentinelPassword: c.SentinelPassword.Reveal(),
			Username: opt.Username, Password: opt.Password, DB: opt.DB, TLSConfig: opt.TLSConfig, PoolSize: opt.PoolSize,
		}), nil
	case len(c.ClusterAddrs) > 0:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: c.ClusterAddrs, Username: opt.Username, Password: opt.Password, TLSConfig: opt.TLSConfig, PoolSize: opt.PoolSize,
		}), nil
	}
	return redis.NewClient(opt), nil
}

// asynqRedisOpt is c as asynq's connection options, for the parts that
// open their own connections (the Asynq UI): the same topology, user,
// password, database and TLS as newRedis.
func asynqRedisOpt(c config.Redis) (asynq.RedisConnOpt, error) {
	opt, err := redisBase(c)
	if err != nil {
		return nil, err
	}
	switch {
	case c.SentinelMaster != "":
		return asynq.RedisFailoverClientOpt{
			MasterName: c.SentinelMaster, SentinelAddrs: c.SentinelAddrs, SentinelPassword: c.SentinelPassword.Reveal(),
			Username: opt.Username, Password: opt.Password, DB: opt.DB, TLSConfig: opt.TLSConfig,
		}, nil
	case len(c.ClusterAddrs) > 0:
		return asynq.RedisClusterClientOpt{Addrs: c.ClusterAddrs, Username: opt.Username, Password: opt.Password, TLSConfig: opt.TLSConfig}, nil
	}
	return asynq.RedisClientOpt{Network: opt.Network, Addr: opt.Addr, Username: opt.Username, Password: opt.Password, DB: opt.DB, TLSConfig: opt.TLSConfig}, nil
}

// openRedis connects to the configured Redis and checks the connection.
func openRedis(ctx context.Context, c config.Redis, poolSize int) (redis.UniversalClient, error) {
	rdb, err := newRedis(c, poolSize)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		if msg := err.Error(); strings.HasPrefix(msg, "NOAUTH") || strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOPERM") {
			return nil, fmt.Errorf("Redis at %s refused fanout's credentials (authentication failed): %v (set the password in REDIS_URL, redis://:PASSWORD@host:port/0, or REDIS_PASSWORD / REDIS_PASSWORD_FILE, and the ACL user in REDIS_USERNAME)", redisWhere(c), err) //nolint:staticcheck // ST1005: "Redis" is a name
		}
		return nil, fmt.Errorf("cannot reach Redis at %s: %v (is it running? set REDIS_URL, or the REDIS_SENTINEL_* or REDIS_CLUSTER_ADDRS settings)", redisWhere(c), err)
	}
	return rdb, nil
}
