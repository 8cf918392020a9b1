-- Leaky bucket with a FIFO queue. ARGV[4] scaled units per unit, ARGV[5] scaled units drained
-- per ms, ARGV[6] capacity (units).
local per_unit, per_ms, capacity = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local state = decode(stored, ARGV[3])
local queue, updated = {}, now
if state then
  queue, updated = state.queue, state.updated
  if state.per_unit ~= per_unit then
    for _, entry in ipairs(queue) do
      entry[2] = rescale(entry[2], state.per_unit, per_unit, true)
    end
  end
end
local at = math.max(now, updated)
local budget = (at - updated) * per_ms
local first = 1
while queue[first] and budget > 0 do
  local take = math.min(budget, queue[first][2])
  queue[first][2] = queue[first][2] - take
  budget = budget - take
  if queue[first][2] == 0 then
    first = first + 1
  else
    break
  end
end
local live, queued = {}, 0
for i = first, #queue do
  live[#live + 1] = queue[i]
  queued = queued + queue[i][2]
end
local function persist()
  local parts = {}
  for i, entry in ipairs(live) do
    parts[i] = '[' .. int(entry[1]) .. ',' .. int(entry[2]) .. ']'
  end
  return '[' .. ARGV[3] .. ',{"queue":[' .. table.concat(parts, ',') .. '],"per_unit":' .. int(per_unit) .. ',"updated":' .. int(at) .. '}]',
    at + ms_to_gain(queued, per_ms)
end
local pour = cost * per_unit
if cost > capacity or pour > capacity * per_unit - queued then
  -- Refused: the drained queue is the state, as in `apply`.
  return false, persist()
end
if #live > 0 and live[#live][1] == at then
  live[#live][2] = live[#live][2] + pour
else
  live[#live + 1] = {at, pour}
end
queued = queued + pour
return true, persist()
