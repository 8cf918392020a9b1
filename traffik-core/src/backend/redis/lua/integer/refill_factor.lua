-- The cost-based bucket's refill factor (ppm) at an average cost of `average` thousandths:
-- 1 / average, between `min_ppm` and 1.
local function refill_factor(average, min_ppm)
  local inverse = 1000000
  if average > 0 then
    inverse = idiv(1000000000, average)
  end
  return math.max(min_ppm, math.min(inverse, 1000000))
end
