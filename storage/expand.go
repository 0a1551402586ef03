package storage

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// A detached dispatch is expanded by a chain of campaign:expand tasks, one
// generation after the other:
//
//	fanout:{id}:expand  hash: gen, the current generation
func genKey(id string) string { return "fanout:{" + id + "}:expand" }

// claimGen makes generation gen the current one unless a later one is.
var claimGen = redis.NewScript(`
-- KEYS[1]: fanout:{id}:expand; ARGV[1]: generation
-- Returns 1 when ARGV[1] is (now) the current generation, 0 when a later one is.
local cur = tonumber(redis.call('HGET', KEYS[1], 'gen') or '-1')
local g = tonumber(ARGV[1])
if cur > g then return 0 end
redis.call('HSET', KEYS[1], 'gen', g)
return 1
`)

// ClaimGeneration makes gen the current expansion generation of campaign id,
// unless a later generation already is: it reports whether the task of
// generation gen may expand.
func (s *Store) ClaimGeneration(ctx context.Context, id string, gen int) (bool, error) {
	ok, err := claimGen.Run(ctx, s.rdb, []string{genKey(id)}, gen).Int()
	if err != nil {
		return false, err
	}
	return ok == 1, nil
}
