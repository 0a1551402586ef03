-- now: shared by the scripts that need the time. Concatenated in Go ahead
-- of a script; no KEYS, no ARGV.
-- now_ms() returns Redis' clock in unix milliseconds, so every worker's
-- claims and stamps share one clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
