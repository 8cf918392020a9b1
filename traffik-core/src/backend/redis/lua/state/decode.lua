-- Decodes a stored `[version,{…}]` state: the table, or nil when absent, unreadable or of
-- another version.
local function decode(stored, version)
  if not stored then
    return nil
  end
  local ok, value = pcall(cjson.decode, stored)
  if ok and type(value) == 'table' and value[1] == tonumber(version) and type(value[2]) == 'table' then
    return value[2]
  end
  return nil
end
