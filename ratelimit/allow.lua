-- allow: take n permits for one sender at every level at once, or none.
-- KEYS[1]  per-second GCRA state: theoretical arrival time in µs (string)
-- KEYS[2]  per-minute window: hash of bucket index -> count, plus "t" (total)
--          and "o" (oldest bucket still counted)
-- KEYS[3]  per-day window: same layout as KEYS[2]
-- KEYS[4]  blocked-until time in µs (string), set by block.lua
-- ARGV[1]  n, the permits asked for (>= 1)
-- ARGV[2]  per-second limit (0 = none)
-- ARGV[3]  burst (>= 1 when ARGV[2] > 0)
-- ARGV[4]  per-minute cap (0 = none), ARGV[5] per-minute bucket width µs
-- ARGV[6]  per-day cap (0 = none),    ARGV[7] per-day bucket width µs
-- ARGV[8]  buckets per window for the minute, ARGV[9] for the day
-- ARGV[10] ahead: how far in the future the permits may conform, µs (0 = now)
-- Returns {allowed, us}: {1, µs from now until the n permits conform (0 when
-- ahead is 0)} when they were taken (reserved), {0, µs until the request
-- could be allowed} when nothing was taken.
-- The clock is Redis TIME, so worker clocks do not matter. Modelled on
-- go-redis/redis_rate v10 (GCRA), with moving-window caps for minute and day.
redis.replicate_commands()

local n = tonumber(ARGV[1])
local ahead = tonumber(ARGV[10] or "0")
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- at: when the permits conform, now or up to ahead later. The caps count
-- them in the bucket of that time.
local at = now

local function num(s) return string.format("%.0f", s) end

local retry = 0
local ok = true

-- Blocked (a provider said 429): nothing goes until the block ends.
local blocked = tonumber(redis.call("GET", KEYS[4]) or "0")
if blocked > now then
  ok = false
  retry = math.max(retry, blocked - now)
end

-- Per-second GCRA. A request above the burst is let through only when the
-- bucket is full (tat <= now), so it cannot wait forever.
local rate = tonumber(ARGV[2])
local new_tat
if rate > 0 then
  local interval = 1000000 / rate
  local burst = math.max(tonumber(ARGV[3]), n)
  local tat = tonumber(redis.call("GET", KEYS[1]) or "0")
  tat = math.max(tat, now)
  new_tat = tat + n * interval
  local allow_at = new_tat - burst * interval
  if allow_at > now + ahead then
    ok = false
    retry = math.max(retry, allow_at - now - ahead)
  elseif allow_at > now then
    at = allow_at
  end
end

-- A moving-window cap at time now (the permits' conforming time): buckets
-- [idx-k, idx] are counted. Drops the buckets that left the window, and
-- says whether n more fit (or how long after now they would).
-- Returns ok, retry µs, the bucket to count n in, the total and the oldest
-- bucket still counted.
local function window(key, cap, width, k, now)
  local idx = math.floor(now / width)
  local first = idx - k
  local head = redis.call("HMGET", key, "t", "o")
  local total = tonumber(head[1] or "0")
  local oldest = tonumber(head[2] or num(first))
  if total > 0 and oldest < first then
    if first - oldest > k then
      redis.call("DEL", key)
      total = 0
    else
      -- Buckets left the window since the last call: usually none or one.
      for lo = oldest, first - 1, 64 do
        local names = {}
        for i = lo, math.min(first - 1, lo + 63) do names[#names + 1] = num(i) end
        local counts = redis.call("HMGET", key, unpack(names))
        for j = 1, #names do
          if counts[j] then total = total - tonumber(counts[j]) end
        end
        redis.call("HDEL", key, unpack(names))
      end
      redis.call("HSET", key, "t", num(total), "o", num(first))
    end
  end
  if oldest < first then oldest = first end
  if idx < oldest then idx = oldest end -- clock went back: count it longer
  if total + n <= cap then
    return true, 0, idx, total, oldest
  end
  -- Denied: the oldest buckets leave first; find the one whose leaving
  -- frees enough room. Only non-empty buckets are fields of the hash: read
  -- them all when they are few, else walk up from the oldest, 64 at a time.
  local need, freed = total + n - cap, 0
  if redis.call("HLEN", key) <= 66 then
    -- (A list of pairs, not a table keyed by bucket index: large integer
    -- keys are slow in some Lua implementations.)
    local all = redis.call("HGETALL", key)
    local list = {}
    for j = 1, #all, 2 do
      if all[j] ~= "t" and all[j] ~= "o" then
        list[#list + 1] = {tonumber(all[j]), tonumber(all[j + 1])}
      end
    end
    table.sort(list, function(a, b) return a[1] < b[1] end)
    for _, b in ipairs(list) do
      freed = freed + b[2]
      if freed >= need then
        return false, (b[1] + k + 1) * width - now, idx, total, oldest
      end
    end
  else
    -- Reservations may have counted permits in buckets after idx (their
    -- time lies ahead): walk up to a window past it.
    for lo = oldest, idx + k, 64 do
      local names = {}
      for i = lo, math.min(idx + k, lo + 63) do names[#names + 1] = num(i) end
      local counts = redis.call("HMGET", key, unpack(names))
      for j = 1, #names do
        if counts[j] then
          freed = freed + tonumber(counts[j])
          if freed >= need then
            return false, (lo + j - 1 + k + 1) * width - now, idx, total, oldest
          end
        end
      end
    end
  end
  return false, k * width, idx, total, oldest -- unreachable while n <= cap
end

local function take(key, idx, total, oldest, width, k)
  redis.call("HINCRBY", key, num(idx), n)
  redis.call("HSET", key, "t", num(total + n), "o", num(oldest))
  -- Counted from the permits' time (at), which may lie ahead of now.
  redis.call("PEXPIRE", key, math.ceil(((k + 2) * width + at - now) / 1000))
end

local mcap = tonumber(ARGV[4])
local mok, mretry, midx, mtotal, mold
if mcap > 0 then
  mok, mretry, midx, mtotal, mold = window(KEYS[2], mcap, tonumber(ARGV[5]), tonumber(ARGV[8]), at)
  if not mok then
    ok = false
    retry = math.max(retry, at - now + mretry - ahead)
  end
end

local dcap = tonumber(ARGV[6])
local dok, dretry, didx, dtotal, dold
if dcap > 0 then
  dok, dretry, didx, dtotal, dold = window(KEYS[3], dcap, tonumber(ARGV[7]), tonumber(ARGV[9]), at)
  if not dok then
    ok = false
    retry = math.max(retry, at - now + dretry - ahead)
  end
end

if not ok then
  return {0, math.max(1, math.ceil(retry))}
end

if rate > 0 then
  redis.call("SET", KEYS[1], string.format("%.3f", new_tat), "PX", math.ceil((new_tat - now) / 1000) + 1000)
end
if mcap > 0 then take(KEYS[2], midx, mtotal, mold, tonumber(ARGV[5]), tonumber(ARGV[8])) end
if dcap > 0 then take(KEYS[3], didx, dtotal, dold, tonumber(ARGV[7]), tonumber(ARGV[9])) end
return {1, math.floor(at - now)}
