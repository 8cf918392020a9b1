-- Leaky bucket (meter). ARGV[4] scaled units per unit, ARGV[5] scaled units leaked per ms,
-- ARGV[6] capacity (units).
local per_unit, per_ms, capacity = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local state = load()
local level, at = 0, now
if state then
  at = math.max(now, state.updated)
  local kept = rescale(state.level, state.per_unit, per_unit, true)
  level = math.max(kept - (at - state.updated) * per_ms, 0)
end
if cost > capacity then
  return reply(false)
end
local pour = cost * per_unit
if pour > capacity * per_unit - level then
  return reply(false)
end
level = level + pour
save('{"level":' .. int(level) .. ',"per_unit":' .. int(per_unit) .. ',"updated":' .. int(at) .. '}',
  at + ms_to_gain(level, per_ms))
return reply(true)
