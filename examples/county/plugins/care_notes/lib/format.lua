-- Checks a note against the plugin's options.
local M = {}

function M.check(text, kind, options)
  if type(text) ~= "string" or text == "" then
    return false, "a note needs some text"
  end
  local length = utf8.len(text)
  if not length then return false, "the note is not valid UTF-8 text" end
  if length > options.max_length then
    return false, ("the note has %d characters; at most %d"):format(length, options.max_length)
  end
  for _, k in ipairs(options.kinds) do
    if k == kind then return true end
  end
  return false, ("unknown kind '%s'"):format(tostring(kind))
end

return M
