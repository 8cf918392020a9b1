-- Cost-based token bucket. ARGV[4] scaled units per token, ARGV[5] scaled units refilled per ms
-- at the full rate, ARGV[6] capacity (tokens), ARGV[7] the average's window (hits), ARGV[8] the
-- lowest refill factor (ppm). Tokens are millionths of scaled units; the average cost is in
-- thousandths. Mirrors `CostBasedTokenBucket::apply`.
local per_unit, per_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local capacity, window, min_ppm = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local cap = capacity * per_unit * 1000000
if cost > capacity then
  return false
end
local tokens, at, average, previous = cap, now, 1000, 1000
if stored then
  local version, kept, was, updated, avg, prev = string.match(stored,
    '^%[(%d+),{"tokens":(%d+),"per_unit":(%d+),"updated":(%d+),"average":(%d+),"previous":(%d+)}%]$')
  if version == ARGV[3] then
    updated = tonumber(updated)
    at = math.max(now, updated)
    kept = math.min(rescale(tonumber(kept), tonumber(was), per_unit, false), cap)
    avg, prev = tonumber(avg), tonumber(prev)
    local refilled = kept + (at - updated) * per_ms * refill_factor(avg, min_ppm)
    -- A bucket that refilled completely forgets its average.
    if refilled < cap then
      tokens, average, previous = refilled, avg, prev
    end
  end
end
local need = cost * per_unit * 1000000
if need > tokens then
  return false
end
tokens = tokens - need
previous = average
average = idiv(average * (window - 1) + 2 * cost * 1000, window + 1)
return true,
  string.format('[%s,{"tokens":%d,"per_unit":%d,"updated":%d,"average":%d,"previous":%d}]',
    ARGV[3], tokens, per_unit, at, average, previous),
  at + ceil_div(cap - tokens, per_ms * refill_factor(average, min_ppm))
