-- Sliding window counter. ARGV[4] period ms, ARGV[5] limit.
local period, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local version, was, current, previous
if stored then
  version, was, current, previous = string.match(stored,
    '^%[(%d+),{"window":(%-?%d+),"current":(%-?%d+),"previous":(%-?%d+)}%]$')
end
local window = idiv(now, period)
if version ~= ARGV[3] then
  current, previous = 0, 0
else
  was, current, previous = tonumber(was), tonumber(current), tonumber(previous)
  if window <= was then
    window = was
  elseif window == was + 1 then
    current, previous = 0, current
  else
    current, previous = 0, 0
  end
end
if cost > limit then
  return false
end
local offset = math.min(math.max(now - window * period, 0), period)
-- The previous window's units still inside (now - period, now], spread from its start
-- (`carried` in sliding_window_counter.rs).
local carried = 0
if previous > 0 then
  carried = math.max(previous - 1 - idiv(offset * previous, period), 0)
end
if carried + current + cost > limit then
  return false
end
current = current + cost
local windows = 1
if current > 0 then
  windows = 2
end
return true,
  string.format('[%s,{"window":%d,"current":%d,"previous":%d}]', ARGV[3], window, current, previous),
  (window + windows) * period
