-- Sliding window log. ARGV[6] period ms, ARGV[8] stamp grid ms.
local period, grid = tonumber(ARGV[6]), tonumber(ARGV[8])
local entries, base = state.entries, state.base
local stamp = ceil_div(at, grid) * grid
local function width(i)
  local before = base
  if i > 1 then
    before = entries[i - 1][2]
  end
  return entries[i][2] - before
end
-- The charge's entry: the one at its stamp if it holds the cost; else, when the charge's time is
-- known only within `slack`, the nearest entry within it that holds the cost; else the latest
-- earlier one that does.
local found
for i = 1, #entries do
  if entries[i][1] >= stamp + grid then
    break
  end
  if entries[i][1] >= stamp and width(i) >= cost then
    found = i
    break
  end
end
if not found and slack > 0 then
  local nearest
  for i = 1, #entries do
    local distance = math.abs(entries[i][1] - stamp)
    if distance <= slack and width(i) >= cost and (not nearest or distance < nearest) then
      found, nearest = i, distance
    end
  end
end
if not found then
  for i = #entries, 1, -1 do
    if entries[i][1] < stamp and width(i) >= cost then
      found = i
      break
    end
  end
end
if not found then
  return 0
end
for i = found, #entries do
  entries[i][2] = entries[i][2] - cost
end
if width(found) == 0 then
  table.remove(entries, found)
end
if #entries == 0 then
  save(nil, 0)
  return 1
end
local parts = {}
for i, entry in ipairs(entries) do
  parts[i] = '[' .. int(entry[1]) .. ',' .. int(entry[2]) .. ']'
end
save('{"entries":[' .. table.concat(parts, ',') .. '],"base":' .. int(base) .. '}',
  entries[#entries][1] + period)
return 1
