-- ceil(a / b) for integers (b > 0).
local function ceil_div(a, b)
  return -idiv(-a, b)
end
