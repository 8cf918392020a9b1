-- Token bucket, with or without debt. ARGV[4] scaled units per token, ARGV[5] scaled units
-- refilled per ms, ARGV[6] capacity (tokens), ARGV[7] most debt (tokens; 0 without debt).
local per_unit, per_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local capacity, max_debt = tonumber(ARGV[6]), tonumber(ARGV[7])
local cap = capacity * per_unit
if cost > capacity + max_debt then
  return false
end
local tokens, at = cap, now
if stored then
  local version, kept, was, updated = string.match(stored,
    '^%[(%d+),{"tokens":(%-?%d+),"per_unit":(%-?%d+),"updated":(%-?%d+)}%]$')
  if version == ARGV[3] then
    updated = tonumber(updated)
    at = math.max(now, updated)
    kept = rescale(tonumber(kept), tonumber(was), per_unit, false)
    tokens = math.min(kept + (at - updated) * per_ms, cap)
  end
end
local need = cost * per_unit
if need > tokens + max_debt * per_unit then
  return false
end
tokens = tokens - need
return true,
  string.format('[%s,{"tokens":%d,"per_unit":%d,"updated":%d}]', ARGV[3], tokens, per_unit, at),
  at + ms_to_gain(cap - tokens, per_ms)
