-- GCRA. ARGV[6] scaled units per cell (T), ARGV[7] scaled units per ms, ARGV[8] tolerance τ.
local per_unit, per_ms, tau = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local remainder = state.remainder
if state.per_ms ~= per_ms and state.per_ms ~= 0 then
  remainder = ceil_div(state.remainder * per_ms, state.per_ms)
end
local ahead = (state.tat - at) * per_ms + remainder
-- A TAT twice `τ + T` ahead of the charge means a later hit that may have found the schedule
-- idle: the charge may be forgotten.
if ahead <= 0 or ahead >= 2 * (tau + per_unit) then
  return 0
end
local left = ahead - cost * per_unit
if left <= 0 then
  save(nil, 0)
  return 1
end
local whole = idiv(left, per_ms)
local rest = left - whole * per_ms
local tat = at + whole
local expires_at = tat
if rest > 0 then
  expires_at = tat + 1
end
save('{"tat":' .. int(tat) .. ',"remainder":' .. int(rest) .. ',"per_ms":' .. int(per_ms) .. '}', expires_at)
return 1
