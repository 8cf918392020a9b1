-- Fixed window (also tiered and priority, whose effective limit the client computes).
-- ARGV[4] period ms, ARGV[5] limit. Mirrors `fixed_window::step`.
local period, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local state = load()
local window, count
if state and now < (state.window + 1) * period then
  window, count = state.window, state.count
else
  window, count = idiv(now, period), 0
  state = nil
end
local json = function()
  return '{"window":' .. int(window) .. ',"count":' .. int(count) .. '}'
end
if cost <= limit - count then
  count = count + cost
  save(json(), (window + 1) * period)
  return reply(true)
end
if not state then
  -- The window rolled over: the new, empty window is the state, as in `apply`.
  save(json(), (window + 1) * period)
end
return reply(false)
