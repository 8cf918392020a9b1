-- Adaptive. ARGV[4] period ms, ARGV[5] configured limit, ARGV[6] floor limit, ARGV[7] recovery
-- step, ARGV[8] load threshold, ARGV[9] reduction factor, ARGV[10] windows an unsettled state lives.
local period, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local floor_limit, step = tonumber(ARGV[6]), tonumber(ARGV[7])
local threshold, reduction = tonumber(ARGV[8]), tonumber(ARGV[9])
local unsettled_windows = tonumber(ARGV[10])
local version, was, kept_count, kept_demand, kept_limit
if stored then
  version, was, kept_count, kept_demand, kept_limit = string.match(stored,
    '^%[(%d+),{"window":(%-?%d+),"count":(%-?%d+),"demand":(%-?%d+),"limit":(%-?%d+)}%]$')
end
local window = idiv(now, period)
local count, demand, effective = 0, 0, limit
if version == ARGV[3] then
  was = tonumber(was)
  local current = math.min(math.max(tonumber(kept_limit), floor_limit), limit)
  if window <= was then
    window, count, demand, effective = was, tonumber(kept_count), tonumber(kept_demand), current
  else
    local following
    if tonumber(kept_demand) > threshold * current then
      following = math.max(math.floor(current * reduction), floor_limit)
    else
      following = math.min(current + step, limit)
    end
    local idle = window - was - 1
    effective = math.min(following + idle * step, limit)
  end
end
if cost > limit then
  return false
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
return admitted,
  string.format('[%s,{"window":%d,"count":%d,"demand":%d,"limit":%d}]', ARGV[3], window, count, demand, effective),
  (window + windows) * period
