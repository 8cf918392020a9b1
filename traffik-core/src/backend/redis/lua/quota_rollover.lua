-- Quota with rollover. ARGV[4] period ms, ARGV[5] limit, ARGV[6] rollover fraction in parts per
-- million, ARGV[7] rollover cap. Mirrors `QuotaWithRollover::apply`.
local period, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local ppm, cap = tonumber(ARGV[6]), tonumber(ARGV[7])
local version, window, used, rollover
if stored then
  version, window, used, rollover = string.match(stored,
    '^%[(%d+),{"window":(%-?%d+),"used":(%-?%d+),"rollover":(%-?%d+)}%]$')
end
local current = version == ARGV[3]
-- The previous period's unused base quota: none without a record of that period.
local unused = 0
if current then
  window, used, rollover = tonumber(window), tonumber(used), tonumber(rollover)
  if now >= (window + 1) * period then
    current = false
    if idiv(now, period) == window + 1 then
      unused = math.max(limit - used, 0)
    end
  end
end
local rolled = not current
if rolled then
  window, used = idiv(now, period), 0
  rollover = math.min(cap, idiv(unused * ppm, 1000000))
end
local admitted = cost <= limit + rollover - used
if admitted then
  used = used + cost
elseif not rolled then
  return false
end
-- Admitted, or refused as a period began: the new period (and its rollover) is the state, as in
-- `apply`. Kept through the next period, whose rollover it decides.
return admitted,
  string.format('[%s,{"window":%d,"used":%d,"rollover":%d}]', ARGV[3], window, used, rollover),
  (window + 2) * period
