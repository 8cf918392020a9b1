-- Leaky bucket (meter). ARGV[4] scaled units per unit, ARGV[5] scaled units leaked per ms,
-- ARGV[6] capacity (units).
local per_unit, per_ms, capacity = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if cost > capacity then
  return false
end
local level, at = 0, now
if stored then
  local version, kept, was, updated = string.match(stored,
    '^%[(%d+),{"level":(%-?%d+),"per_unit":(%-?%d+),"updated":(%-?%d+)}%]$')
  if version == ARGV[3] then
    updated = tonumber(updated)
    at = math.max(now, updated)
    kept = rescale(tonumber(kept), tonumber(was), per_unit, true)
    level = math.max(kept - (at - updated) * per_ms, 0)
  end
end
local pour = cost * per_unit
if pour > capacity * per_unit - level then
  return false
end
level = level + pour
return true,
  string.format('[%s,{"level":%d,"per_unit":%d,"updated":%d}]', ARGV[3], level, per_unit, at),
  at + ms_to_gain(level, per_ms)
