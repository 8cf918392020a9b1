-- Leaky bucket (meter). ARGV[6] scaled units per unit, ARGV[7] scaled units leaked per ms,
-- ARGV[8] capacity (units).
local per_unit, per_ms, capacity = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local updated = math.max(at, state.updated)
local kept = rescale(state.level, state.per_unit, per_unit, true)
local level = math.max(kept - (updated - state.updated) * per_ms, 0)
-- A bucket last poured into a whole drain time after the charge has forgotten it.
if level == 0 or updated >= at + ms_to_gain(capacity * per_unit, per_ms) then
  return 0
end
level = math.max(level - cost * per_unit, 0)
if level == 0 then
  save(nil, 0)
  return 1
end
save('{"level":' .. int(level) .. ',"per_unit":' .. int(per_unit) .. ',"updated":' .. int(updated) .. '}',
  updated + ms_to_gain(level, per_ms))
return 1
