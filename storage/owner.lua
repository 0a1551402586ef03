-- owner: shared by the ledger scripts. Concatenated in Go ahead of a
-- script; no KEYS, no ARGV.
-- owner(v) parses the ledger value v of a claimed ("c<ms>:<token>[:<since>]")
-- or sending ("s<ms>:<token>:<since>") row. Returns its state byte, time
-- (ms, as a string; nil when absent), token ("" when absent) and since (a
-- string; nil when absent). Values of other states return only their state
-- byte. Times stay strings: Lua's number-to-string conversion costs more
-- than the rest of a row's work, and most callers only copy them.
local function owner(v)
  local st = string.sub(v, 1, 1)
  if st ~= 'c' and st ~= 's' then return st, nil, '', nil end
  local a, b, c = string.match(v, '^.(%d+):([^:]*):?(%d*)$')
  if c == '' then c = nil end
  return st, a, b or '', c
end
