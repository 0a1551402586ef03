-- opening: notes when a campaign's waiting work next opens (send windows).
-- KEYS[1] the campaign hash (fanout:{id})
-- ARGV[1] the opening, unix ms; ARGV[2] the noting worker's now, unix ms
-- Sets the field next_opening to ARGV[1] unless it holds an earlier time
-- still to come (other work opens first). Returns 1 when set, 0 when kept,
-- -1 when the campaign does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local at, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local cur = tonumber(redis.call('HGET', KEYS[1], 'next_opening') or '0')
if cur > now and cur <= at then
  return 0
end
redis.call('HSET', KEYS[1], 'next_opening', at)
return 1
