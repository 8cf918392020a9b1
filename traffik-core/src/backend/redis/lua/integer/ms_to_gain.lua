-- ceil(scaled / per_ms) milliseconds, 0 for nothing to gain.
local function ms_to_gain(scaled, per_ms)
  if scaled <= 0 then
    return 0
  end
  return ceil_div(scaled, per_ms)
end
