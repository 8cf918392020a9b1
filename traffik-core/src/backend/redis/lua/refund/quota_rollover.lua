-- Quota with rollover. ARGV[6] period ms. Mirrors `QuotaWithRollover::refund`.
local period = tonumber(ARGV[6])
if state.window ~= idiv(at, period) then
  return 0
end
save('{"window":' .. int(state.window) .. ',"used":' .. int(math.max(state.used - cost, 0))
  .. ',"rollover":' .. int(state.rollover) .. '}', (state.window + 2) * period)
return 1
