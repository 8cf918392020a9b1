-- Sliding window counter. ARGV[6] period ms.
local period = tonumber(ARGV[6])
local charged = idiv(at, period)
local current, previous = state.current, state.previous
if state.window == charged then
  current = math.max(current - cost, 0)
elseif state.window == charged + 1 then
  previous = math.max(previous - cost, 0)
else
  return 0
end
local windows = 1
if current > 0 then
  windows = 2
end
save('{"window":' .. int(state.window) .. ',"current":' .. int(current) .. ',"previous":' .. int(previous) .. '}',
  (state.window + windows) * period)
return 1
