-- Fixed window (also tiered and priority). ARGV[6] period ms. Mirrors `refund_window`.
local period = tonumber(ARGV[6])
if state.window ~= idiv(at, period) then
  return 0
end
save('{"window":' .. int(state.window) .. ',"count":' .. int(math.max(state.count - cost, 0)) .. '}',
  (state.window + 1) * period)
return 1
