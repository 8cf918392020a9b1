-- Fixed window (also tiered and priority, whose effective limit the client computes).
-- ARGV[4] period ms, ARGV[5] limit. Mirrors `fixed_window::step`.
local period, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local version, window, count
if stored then
  version, window, count = string.match(stored, '^%[(%d+),{"window":(%-?%d+),"count":(%-?%d+)}%]$')
end
local fresh = version ~= ARGV[3]
if not fresh then
  window, count = tonumber(window), tonumber(count)
  fresh = now >= (window + 1) * period
end
if fresh then
  window, count = idiv(now, period), 0
end
local admitted = cost <= limit - count
if admitted then
  count = count + cost
elseif not fresh then
  return false
end
-- Admitted, or refused as the window rolled over: the new, empty window is the state, as in
-- `apply`.
return admitted, string.format('[%s,{"window":%d,"count":%d}]', ARGV[3], window, count),
  (window + 1) * period
