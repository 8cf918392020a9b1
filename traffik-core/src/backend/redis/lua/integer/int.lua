local function int(n)
  return string.format('%d', n)
end
