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
local offset = math.min(math.max(now - window * period, 0), period)
-- The previous window's units still inside (now - period, now], spread from its start
-- (`carried` in sliding_window_counter.rs).
local carried = 0
if previous > 0 then
  carried = math.max(previous - 1 - idiv(offset * previous, period), 0)
end
if carried + current + cost > limit then
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
