-- Re-expresses `scaled` written at `from` scaled units per unit in `per_unit`, rounding up
-- (amounts owed) or down (amounts available): never in the client's favour.
local function rescale(scaled, from, per_unit, round_up)
  if from == per_unit or from == 0 then
    return scaled
  end
  if round_up then
    return ceil_div(scaled * per_unit, from)
  end
  return idiv(scaled * per_unit, from)
end
