-- traffik: proves at connect that this connection can decide. It runs every command the
-- decision and refund scripts run, on a probe key of the namespace, and leaves nothing behind
-- (the key-value contract's commands, for custom strategies, are not probed). KEYS[1] the probe
-- key.
--
-- A command the user may not run fails inside a script as `ERR The user executing the script
-- can't run this command`, which does not say which: the probe names it (`NOPERM traffik's
-- scripts need SET …`).
local commands = {
  {'TIME'},
  {'SET', KEYS[1], '1', 'PX', 1000},
  {'GET', KEYS[1]},
  {'DEL', KEYS[1]},
}
for _, command in ipairs(commands) do
  local reply = redis.pcall(unpack(command))
  if type(reply) == 'table' and reply.err then
    redis.pcall('DEL', KEYS[1])
    local err = reply.err
    if string.find(err, "can't run", 1, true) or string.find(err, 'NOPERM', 1, true)
        or string.find(err, 'ACL failure', 1, true) or string.find(err, 'no permissions', 1, true) then
      return redis.error_reply('NOPERM traffik\'s scripts need ' .. command[1] .. ' on ' .. KEYS[1] .. ': ' .. err)
    end
    -- Any other failure (READONLY on a replica, OOM) keeps its own code.
    return redis.error_reply(err)
  end
end
return 1
