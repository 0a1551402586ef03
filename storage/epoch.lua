-- KEYS[1]: fanout:epoch (hash: run_id, loss_at, losses)
-- ARGV[1]: the run_id this caller read before; ARGV[2]: the run_id Redis
-- reports now; ARGV[3]: now (unix ms)
-- Records that Redis restarted or failed over (its run_id changed) since
-- the epoch was written: once, whoever sees it first. Returns 1 when this
-- call recorded it, 0 when another did (or the epoch is already current).
if redis.call('HGET', KEYS[1], 'run_id') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'run_id', ARGV[2], 'loss_at', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'losses', 1)
return 1
