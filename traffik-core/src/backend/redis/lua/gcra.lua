-- GCRA. ARGV[4] scaled units per cell (the emission interval), ARGV[5] scaled units per ms,
-- ARGV[6] tolerance τ (scaled units).
local per_unit, per_ms, tau = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local ceiling = tau + per_unit
local need = cost * per_unit
if need > ceiling then
  return false
end
local base = 0
if stored then
  local version, tat, remainder, was = string.match(stored,
    '^%[(%d+),{"tat":(%-?%d+),"remainder":(%-?%d+),"per_ms":(%-?%d+)}%]$')
  if version == ARGV[3] then
    tat, remainder, was = tonumber(tat), tonumber(remainder), tonumber(was)
    if was ~= per_ms and was ~= 0 then
      remainder = -idiv(-(remainder * per_ms), was)
    end
    base = math.max((tat - now) * per_ms + remainder, 0)
  end
end
local next = base + need
if next > ceiling then
  return false
end
local whole = idiv(next, per_ms)
local remainder = next - whole * per_ms
local tat = now + whole
local expires_at = tat
if remainder > 0 then
  expires_at = tat + 1
end
return true, string.format('[%s,{"tat":%d,"remainder":%d,"per_ms":%d}]', ARGV[3], tat, remainder, per_ms),
  expires_at
