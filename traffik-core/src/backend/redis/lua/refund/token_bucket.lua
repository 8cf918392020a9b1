-- Token bucket, with or without debt. ARGV[6] scaled units per token, ARGV[7] scaled units
-- refilled per ms, ARGV[8] capacity (tokens). Mirrors `Bucket::refund`.
local per_unit, per_ms, capacity = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local cap = capacity * per_unit
local updated = math.max(at, state.updated)
local kept = rescale(state.tokens, state.per_unit, per_unit, false)
local tokens = math.min(kept + (updated - state.updated) * per_ms, cap)
-- A bucket last refilled a whole refill time after the charge has forgotten it.
if tokens >= cap or state.updated >= at + ms_to_gain(cap, per_ms) then
  return 0
end
tokens = math.min(tokens + cost * per_unit, cap)
if tokens >= cap then
  save(nil, 0)
  return 1
end
save('{"tokens":' .. int(tokens) .. ',"per_unit":' .. int(per_unit) .. ',"updated":' .. int(updated) .. '}',
  updated + ms_to_gain(cap - tokens, per_ms))
return 1
