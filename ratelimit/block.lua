-- block: stop one sender for every caller until now + d; an existing longer
-- block is kept, never shortened.
-- KEYS[1]  blocked-until time in µs (string), read by allow.lua
-- ARGV[1]  d, the block in µs (> 0)
-- Returns the remaining block in µs after the call.
-- The clock is Redis TIME, the same clock allow.lua reads.
redis.replicate_commands()

local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call("GET", KEYS[1]) or "0")
if cur >= untl then
  return math.ceil(cur - now)
end
redis.call("SET", KEYS[1], string.format("%.0f", untl), "PX", math.ceil((untl - now) / 1000) + 1000)
return math.ceil(untl - now)
