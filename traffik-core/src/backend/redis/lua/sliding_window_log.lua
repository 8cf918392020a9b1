-- Sliding window log. ARGV[4] period ms, ARGV[5] limit, ARGV[6] stamp grid ms.
local period, limit, grid = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local state = decode(stored, ARGV[3])
local entries, base = {}, 0
if state then
  entries, base = state.entries, state.base
end
local first = 1
while entries[first] and entries[first][1] + period <= now do
  base = entries[first][2]
  first = first + 1
end
local live = {}
for i = first, #entries do
  live[#live + 1] = entries[i]
end
if #live == 0 then
  base = 0
end
local total = base
if #live > 0 then
  total = live[#live][2]
end
local function persist()
  if #live == 0 then
    return false, 0
  end
  local parts = {}
  for i, entry in ipairs(live) do
    parts[i] = '[' .. int(entry[1]) .. ',' .. int(entry[2]) .. ']'
  end
  return '[' .. ARGV[3] .. ',{"entries":[' .. table.concat(parts, ',') .. '],"base":' .. int(base) .. '}]',
    live[#live][1] + period
end
if cost <= limit and cost <= limit - (total - base) then
  local latest = now
  if #live > 0 then
    latest = math.max(now, live[#live][1])
  end
  local stamp = ceil_div(latest, grid) * grid
  -- Rebase the running totals from zero before they pass 2^52 (as `rebase_before`).
  if base > 0 and total + cost > 4503599627370496 then
    for _, entry in ipairs(live) do
      entry[2] = entry[2] - base
    end
    total = total - base
    base = 0
  end
  if #live > 0 and live[#live][1] == stamp then
    live[#live][2] = total + cost
  else
    live[#live + 1] = {stamp, total + cost}
  end
  return true, persist()
end
if first > 1 then
  -- Entries aged out: the pruned log is the state, as in `apply`.
  return false, persist()
end
return false
