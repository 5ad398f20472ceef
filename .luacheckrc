-- luacheck settings for plugins: Lua 5.4, no globals beyond the sandbox's.
std = "lua54"
max_line_length = 120

-- A configuration file is data: its top-level assignments are the settings.
files["**/yizhan.conf.lua"] = { allow_defined_top = true, ignore = { "131" }, globals = { "env" } }
