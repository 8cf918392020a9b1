-- GCRA. ARGV[4] scaled units per cell (the emission interval), ARGV[5] scaled units per ms,
-- ARGV[6] tolerance τ (scaled units).
local per_unit, per_ms, tau = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local ceiling = tau + per_unit
local state = load()
local base = 0
if state then
  local remainder = state.remainder
  if state.per_ms ~= per_ms and state.per_ms ~= 0 then
    remainder = ceil_div(state.remainder * per_ms, state.per_ms)
  end
  base = math.max((state.tat - now) * per_ms + remainder, 0)
end
local need = cost * per_unit
if need > ceiling then
  return reply(false)
end
local next = base + need
if next > ceiling then
  return reply(false)
end
local whole = idiv(next, per_ms)
local remainder = next - whole * per_ms
local tat = now + whole
local expires_at = tat
if remainder > 0 then
  expires_at = tat + 1
end
save('{"tat":' .. int(tat) .. ',"remainder":' .. int(remainder) .. ',"per_ms":' .. int(per_ms) .. '}', expires_at)
return reply(true)
