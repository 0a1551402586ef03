-- KEYS[1]: the webhook event stream (fanout:{hooks}:s); KEYS[2]: the
--   receiver's liveness key (fanout:{hooks}:live); KEYS[3..]: one dedupe key
--   per event (fanout:{hooks}:d:<digest>)
-- ARGV[1]: the dedupe keys' time to live (ms); ARGV[2]: the liveness key's
--   time to live (ms); ARGV[3..]: the events' bodies, ARGV[i] the body of
--   KEYS[i]
-- Records every event not seen before in one atomic step: its body is
-- appended to the stream (field b) and its dedupe key set (expiring). A
-- replay, or a second copy in the same call, writes nothing. The liveness
-- key is refreshed only when something new was recorded. Returns, per
-- event, 1 (recorded) or 0 (replay).
local out = {}
local fresh = false
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    -- The stream first: a failing XADD stops the script before the dedupe
    -- key is written (scripts do not roll back), so a retry is recorded.
    redis.call('XADD', KEYS[1], '*', 'b', ARGV[i])
    redis.call('SET', KEYS[i], '1', 'PX', ARGV[1])
    out[#out + 1] = 1
    fresh = true
  else
    out[#out + 1] = 0
  end
end
if fresh then redis.call('SET', KEYS[2], '1', 'PX', ARGV[2]) end
return out
