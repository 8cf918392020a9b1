-- Cost-based token bucket. ARGV[6] scaled units per token, ARGV[7] scaled units refilled per ms
-- at the full rate, ARGV[8] capacity (tokens), ARGV[9] the average's window (hits), ARGV[10] the
-- lowest refill factor (ppm). Mirrors `CostBasedTokenBucket::refund`.
local per_unit, per_ms = tonumber(ARGV[6]), tonumber(ARGV[7])
local capacity, window, min_ppm = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local cap = capacity * per_unit * 1000000
local updated = math.max(at, state.updated)
local kept = math.min(rescale(state.tokens, state.per_unit, per_unit, false), cap)
local average, previous = state.average, state.previous
local tokens = kept + (updated - state.updated) * per_ms * refill_factor(average, min_ppm)
-- Full (it forgot the charge), or last refilled a whole refill time after the charge.
if tokens >= cap or state.updated >= at + ceil_div(cap, per_ms * refill_factor(average, min_ppm)) then
  return 0
end
tokens = math.min(tokens + cost * per_unit * 1000000, cap)
if average == idiv(previous * (window - 1) + 2 * cost * 1000, window + 1) then
  average = previous
end
if tokens >= cap then
  save(nil, 0)
  return 1
end
save('{"tokens":' .. int(tokens) .. ',"per_unit":' .. int(per_unit) .. ',"updated":' .. int(updated)
  .. ',"average":' .. int(average) .. ',"previous":' .. int(previous) .. '}',
  updated + ceil_div(cap - tokens, per_ms * refill_factor(average, min_ppm)))
return 1
