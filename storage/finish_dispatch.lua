-- KEYS[1]: campaign hash
-- ARGV[1]: now (unix ms); ARGV[2..5]: invalid, duplicates, suppressed, rows
-- Marks expansion finished, stores the dispatcher's counts, and completes the
-- campaign when nothing is left to send. Returns the state, or nil (false)
-- when the campaign does not exist.
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return false end
redis.call('HSET', KEYS[1], 'dispatched', '1', 'invalid', ARGV[2], 'duplicates', ARGV[3],
  'suppressed', ARGV[4], 'rows', ARGV[5])
if st == 'dispatching' then redis.call('HSET', KEYS[1], 'state', 'running') end
maybe_complete(KEYS[1], ARGV[1])
return redis.call('HGET', KEYS[1], 'state')
