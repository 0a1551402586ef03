-- KEYS[1]: fanout:{id}:expand; ARGV[1]: generation
-- Returns 1 when ARGV[1] is (now) the current generation, 0 when a later one is.
local cur = tonumber(redis.call('HGET', KEYS[1], 'gen') or '-1')
local g = tonumber(ARGV[1])
if cur > g then return 0 end
redis.call('HSET', KEYS[1], 'gen', g)
return 1
