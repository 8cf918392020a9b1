-- Leaky bucket with a FIFO queue. ARGV[6] scaled units per unit, ARGV[7] scaled units drained
-- per ms, ARGV[8] capacity (units).
local per_unit, per_ms, capacity = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local queue = state.queue
if state.per_unit ~= per_unit then
  for _, entry in ipairs(queue) do
    entry[2] = rescale(entry[2], state.per_unit, per_unit, true)
  end
end
local updated = math.max(at, state.updated)
local budget = (updated - state.updated) * per_ms
local live = {}
for _, entry in ipairs(queue) do
  local take = math.min(math.max(budget, 0), entry[2])
  budget = budget - take
  if entry[2] - take > 0 then
    live[#live + 1] = {entry[1], entry[2] - take}
  end
end
local queued = 0
for _, entry in ipairs(live) do
  queued = queued + entry[2]
end
if queued == 0 then
  return 0
end
-- A queue last drained a whole drain time after the charge has forgotten it.
if updated >= at + ms_to_gain(capacity * per_unit, per_ms) then
  return 0
end
-- Newest entries first: decisions depend only on the queued total.
local owed = cost * per_unit
while owed > 0 and #live > 0 do
  local take = math.min(owed, live[#live][2])
  live[#live][2] = live[#live][2] - take
  owed = owed - take
  queued = queued - take
  if live[#live][2] == 0 then
    live[#live] = nil
  end
end
if #live == 0 then
  save(nil, 0)
  return 1
end
local parts = {}
for i, entry in ipairs(live) do
  parts[i] = '[' .. int(entry[1]) .. ',' .. int(entry[2]) .. ']'
end
save('{"queue":[' .. table.concat(parts, ',') .. '],"per_unit":' .. int(per_unit) .. ',"updated":' .. int(updated) .. '}',
  updated + ms_to_gain(queued, per_ms))
return 1
