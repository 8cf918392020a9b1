-- Token bucket, with or without debt. ARGV[4] scaled units per token, ARGV[5] scaled units
-- refilled per ms, ARGV[6] capacity (tokens), ARGV[7] most debt (tokens; 0 without debt).
local per_unit, per_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local capacity, max_debt = tonumber(ARGV[6]), tonumber(ARGV[7])
local cap = capacity * per_unit
local state = load()
local tokens, at = cap, now
if state then
  at = math.max(now, state.updated)
  local kept = rescale(state.tokens, state.per_unit, per_unit, false)
  tokens = math.min(kept + (at - state.updated) * per_ms, cap)
end
if cost > capacity + max_debt then
  return reply(false)
end
local need = cost * per_unit
if need > tokens + max_debt * per_unit then
  return reply(false)
end
tokens = tokens - need
save('{"tokens":' .. int(tokens) .. ',"per_unit":' .. int(per_unit) .. ',"updated":' .. int(at) .. '}',
  at + ms_to_gain(cap - tokens, per_ms))
return reply(true)
