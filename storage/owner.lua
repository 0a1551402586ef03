-- owner: shared by the ledger scripts. Concatenated in Go ahead of a
-- script; no KEYS, no ARGV.
-- owner(v) parses the ledger value v of a claimed ("c<ms>:<token>[:<since>]")
-- or sending ("s<ms>:<token>:<since>") row. Returns its state byte, time
-- (ms, 0 when absent), token ("" when absent) and since (nil when absent).
local function owner(v)
  local st = string.sub(v, 1, 1)
  local a, b, c = string.match(string.sub(v, 2), '^(%d+):([^:]*):?(%d*)$')
  return st, tonumber(a) or 0, b or '', tonumber(c)
end
