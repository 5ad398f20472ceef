-- A command's arguments read by its parser, which raises { usage = why }
-- for the user's mistakes: a mistake prints "NAME: why" and the command's
-- usage (exit 2), --help prints the usage (exit 0). Returns the options, or
-- nil and the exit status.
local M = {}

function M.read(cmd, name, usage, parse)
  local ok, o = pcall(parse, cmd)
  if not ok then
    if type(o) == "table" and o.usage then
      cmd.err(name .. ": " .. o.usage)
      cmd.err("usage: yizhan " .. usage)
      return nil, 2
    end
    error(o, 0)
  end
  if o.help then
    cmd.print("usage: yizhan " .. usage)
    return nil, 0
  end
  return o
end

return M
