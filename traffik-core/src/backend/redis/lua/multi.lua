-- traffik: several decisions as one, all or nothing (after clock.lua, deadline.lua, the functions
-- and the transitions, each as `run.<strategy>(stored, cost, args)` returning whether it admits
-- and, when the key would change, the value it would store and when that expires).
--
-- KEYS[i]  the state key of limit i (distinct keys; in a cluster, one hash tag)
-- ARGV[1]  now in milliseconds, or '' to read Redis TIME
-- ARGV[2]  the number of limits
-- then, per limit: its strategy, its cost, its state version, the number of its parameters,
--          and those parameters
--
-- last     the caller's deadline (ms, Redis's clock), or '+<ms>' to keep keys that much longer,
--          or '' (deadline.lua)
--
-- Every transition runs on the state as it is; only if every one admits is every new state
-- stored. Replies {now, then per limit: the state it read (or nil), 1 if admitted else 0, the
-- key's value after it ('' when absent)}.
local count = tonumber(ARGV[2])
local at = 3
local reads, verdicts, saves = {}, {}, {}
local all = true
for i = 1, count do
  local strategy, cost, version = ARGV[at], tonumber(ARGV[at + 1]), ARGV[at + 2]
  local params = tonumber(ARGV[at + 3])
  -- The transition reads its arguments where a single decision has them.
  local args = {ARGV[1], ARGV[at + 1], version}
  for j = 1, params do
    args[3 + j] = ARGV[at + 3 + j]
  end
  at = at + 4 + params
  local stored = redis.call('GET', KEYS[i])
  local admitted, value, expires_at = run[strategy](stored, cost, args)
  reads[i], verdicts[i] = stored, admitted
  if value ~= nil then
    saves[i] = {value, expires_at}
  end
  all = all and admitted
end
local reply = {now}
for i = 1, count do
  local after = reads[i] or ''
  local saved = saves[i]
  if all and saved then
    after = store(KEYS[i], saved[1], saved[2])
  end
  reply[#reply + 1] = reads[i]
  reply[#reply + 1] = verdicts[i] and 1 or 0
  reply[#reply + 1] = after
end
return reply
