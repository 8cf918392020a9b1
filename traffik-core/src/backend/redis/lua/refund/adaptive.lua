-- Adaptive. ARGV[6] period ms, ARGV[7] configured limit, ARGV[10] load threshold, ARGV[12]
-- windows an unsettled state lives. The refunded hit leaves the count and the demand.
local period, limit = tonumber(ARGV[6]), tonumber(ARGV[7])
local threshold, unsettled_windows = tonumber(ARGV[10]), tonumber(ARGV[12])
if state.window ~= idiv(at, period) then
  return 0
end
local count = math.max(state.count - cost, 0)
local demand = math.max(state.demand - cost, 0)
local windows = unsettled_windows
if state.limit >= limit and demand <= threshold * state.limit then
  windows = 1
end
save('{"window":' .. int(state.window) .. ',"count":' .. int(count) .. ',"demand":' .. int(demand) .. ',"limit":' .. int(state.limit) .. '}',
  (state.window + windows) * period)
return 1
