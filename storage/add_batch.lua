-- KEYS[1]: campaign hash; KEYS[2]: batches hash fanout:{id}:b
-- ARGV[1]: batch sequence number; ARGV[2]: recipients in the batch; ARGV[3]: its highest row
-- Returns 1 when the batch is new (total grew), 0 when it was recorded before.
local m = tonumber(redis.call('HGET', KEYS[1], 'maxrow') or '0')
if tonumber(ARGV[3]) > m then redis.call('HSET', KEYS[1], 'maxrow', ARGV[3]) end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'total', tonumber(ARGV[2]))
  redis.call('HINCRBY', KEYS[1], 'batches', 1)
  return 1
end
return 0
