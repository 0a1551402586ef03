-- KEYS[1]: campaign hash fanout:{id}
-- ARGV[1]: spec JSON; ARGV[2]: spec digest; ARGV[3]: now (unix ms); ARGV[4]: "1" when SMS DLRs are tracked
-- ARGV[5]: name; ARGV[6]: channel
-- Returns 1 when created, 0 when a campaign with the same digest exists,
-- -1 when the id holds a different spec.
local d = redis.call('HGET', KEYS[1], 'digest')
if d then
  if d == ARGV[2] then return 0 end
  return -1
end
redis.call('HSET', KEYS[1], 'spec', ARGV[1], 'digest', ARGV[2], 'state', 'dispatching',
  'created_at', ARGV[3], 'dlr', ARGV[4], 'name', ARGV[5], 'channel', ARGV[6], 'total', 0)
return 1
