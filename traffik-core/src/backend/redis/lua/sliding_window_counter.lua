-- Sliding window counter. ARGV[4] period ms, ARGV[5] limit.
local period, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local state = load()
local window = idiv(now, period)
local current, previous
if not state then
  current, previous = 0, 0
elseif window <= state.window then
  window, current, previous = state.window, state.current, state.previous
elseif window == state.window + 1 then
  current, previous = 0, state.current
else
  current, previous = 0, 0
end
if cost > limit then
  return reply(false)
end
local offset = math.max(now - window * period, 0)
local weighted = previous * (period - math.min(offset, period)) + current * period
if weighted + cost * period > limit * period then
  return reply(false)
end
current = current + cost
local windows = 1
if current > 0 then
  windows = 2
end
save('{"window":' .. int(window) .. ',"current":' .. int(current) .. ',"previous":' .. int(previous) .. '}',
  (window + windows) * period)
return reply(true)
