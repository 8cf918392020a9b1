-- Adaptive. ARGV[4] period ms, ARGV[5] configured limit, ARGV[6] floor limit, ARGV[7] recovery
-- step, ARGV[8] load threshold, ARGV[9] reduction factor, ARGV[10] windows an unsettled state lives.
local period, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local floor_limit, step = tonumber(ARGV[6]), tonumber(ARGV[7])
local threshold, reduction = tonumber(ARGV[8]), tonumber(ARGV[9])
local unsettled_windows = tonumber(ARGV[10])
local state = load()
local window = idiv(now, period)
local count, demand, effective = 0, 0, limit
if state then
  local current = math.min(math.max(state.limit, floor_limit), limit)
  if window <= state.window then
    window, count, demand, effective = state.window, state.count, state.demand, current
  else
    local following
    if state.demand > threshold * current then
      following = math.max(math.floor(current * reduction), floor_limit)
    else
      following = math.min(current + step, limit)
    end
    local idle = window - state.window - 1
    effective = math.min(following + idle * step, limit)
  end
end
if cost > limit then
  return reply(false)
end
demand = demand + cost
local admitted = cost <= effective - count
if admitted then
  count = count + cost
end
local windows = unsettled_windows
if effective >= limit and demand <= threshold * effective then
  windows = 1
end
save('{"window":' .. int(window) .. ',"count":' .. int(count) .. ',"demand":' .. int(demand) .. ',"limit":' .. int(effective) .. '}',
  (window + windows) * period)
return reply(admitted)
