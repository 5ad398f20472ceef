-- broadcast: open letters to every family (or every teacher) of the county
-- or of one school, from the command line:
--
--   yizhan broadcast --text "{{child}}的家长您好：……" --to guardians [--school 城关小学]
--   yizhan broadcast --template winter_letter --params date=1月20日 --to parents --yes
--
-- It finds the recipients in the registry (each number once), prints a
-- preview (how many, per school, an example of the text as it will read,
-- SMS parts), asks for confirmation, then queues one message per number in
-- one transaction. Keys name the broadcast and the recipient (the
-- person's id, or for a number several people share the first 16 hex
-- digits of its SHA-256: never the number, which the core publishes
-- unmasked in message events and logs), so running the same broadcast
-- again queues nothing twice. Quiet hours, rates and daily
-- caps are the core's: a broadcast queued at night waits for the morning.

local USAGE = "broadcast (--text T | --template NAME [--params k=v,...]) --to guardians|parents|teachers"
  .. " [--school S] [--yes] [--at \"YYYY-MM-DD HH:MM\"] [--key K] [--channel C]"

-- The families of the active children: the people 'link' names among the
-- children's guardianships (g).
local function families(link, order)
  return [[
      SELECT p.id, p.name, p.phone, c.id AS child_id, c.name AS child,
             s.id AS school_id, s.name AS school
        FROM children c
        JOIN guardianships g ON g.child_id = c.id AND ]] .. link .. [[
        JOIN people p ON p.id = g.person_id
        JOIN schools s ON s.id = c.school_id
       WHERE c.status = 'active' AND (:school IS NULL OR c.school_id = :school)
       ORDER BY s.id, c.class, c.id, ]] .. order
end

-- Who each audience is. Rows: the person, their phone, their school and,
-- for families, the child they are written to about.
local AUDIENCE = {
  guardians = {
    label = "监护人（在册留守儿童的主要监护人）",
    sql = families("g.is_primary = 1", "p.id"),
  },
  parents = {
    label = "父母（在册留守儿童的父亲和母亲）",
    sql = families("g.relation IN ('father', 'mother')", "g.relation, p.id"),
  },
  teachers = {
    label = "教师",
    sql = [[
      SELECT p.id, p.name, p.phone, s.id AS school_id, s.name AS school
        FROM people p LEFT JOIN schools s ON s.id = p.school_id
       WHERE p.kind = 'teacher' AND (:school IS NULL OR p.school_id = :school)
       ORDER BY s.id, p.class, p.id]],
  },
}

local policy = require("lib.policy")

local host, opts -- set in setup

local function usage_error(cmd, msg)
  cmd.err("broadcast: " .. msg)
  cmd.err("usage: yizhan " .. USAGE)
  return 2
end

-- "k=v,k=v" or a JSON object -> a table of strings and numbers.
local function parse_params(s)
  local params = {}
  if s:match("^%s*{") then
    local t, err = host.json.decode(s)
    if type(t) ~= "table" then return nil, "--params: " .. (err or "expected a JSON object") end
    for k, v in pairs(t) do
      if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
        return nil, "--params: values must be strings or numbers"
      end
      params[k] = v
    end
    return params
  end
  for item in s:gmatch("[^,]+") do
    local k, v = item:match("^%s*([%w_]+)%s*=(.*)$")
    if not k then return nil, ("--params: expected name=value, got '%s'"):format(item) end
    params[k] = v
  end
  return params
end

-- The command line -> the broadcast asked for, or nil and what is wrong.
local function parse_args(cmd)
  local o, rest = cmd.options({ text = "value", template = "value", params = "value", to = "value",
                                school = "value", at = "value", key = "value", channel = "value",
                                yes = "flag", y = "flag" })
  if not o then return nil, rest end
  if o.help then return { help = true } end
  if rest[1] then return nil, ("unknown argument '%s'"):format(rest[1]) end
  local a = { yes = o.yes or o.y or false, text = o.text, template = o.template, params = o.params,
              to = o.to, school = o.school, at = o.at, key = o.key, channel = o.channel }
  if (a.text == nil) == (a.template == nil) then return nil, "give --text or --template (one of them)" end
  if a.text == "" then return nil, "--text is empty" end
  if not a.to then return nil, "--to is required (guardians, parents or teachers)" end
  if not AUDIENCE[a.to] then
    return nil, ("--to: expected guardians, parents or teachers, got '%s'"):format(a.to)
  end
  if a.params then
    local p, err = parse_params(a.params)
    if not p then return nil, err end
    a.params = p
  else
    a.params = {}
  end
  if a.at then
    local d, hm = a.at:match("^%s*(%S+)%s+(%d%d?:%d%d)%s*$")
    local date = d and host.text.date(d)
    if not date then return nil, ("--at: expected \"YYYY-MM-DD HH:MM\", got '%s'"):format(a.at) end
    a.at = date .. " " .. (#hm == 4 and "0" .. hm or hm)
  end
  if a.key and (a.key == "" or #a.key > 64 or a.key:find("%s")) then
    return nil, "--key: 1 to 64 characters, no spaces"
  end
  return a
end

-- The broadcast's own id: the given key, or a hash of what is sent, to
-- whom and on which day, so the same command run again is the same
-- broadcast.
local function broadcast_id(a, school)
  if a.key then return a.key end
  local names = {}
  for k in pairs(a.params) do names[#names + 1] = k end
  table.sort(names)
  local what = { a.text or ("template:" .. a.template) }
  for _, k in ipairs(names) do what[#what + 1] = k .. "=" .. tostring(a.params[k]) end
  what[#what + 1] = a.to
  what[#what + 1] = school and tostring(school.id) or "*"
  what[#what + 1] = a.at and a.at:sub(1, 10) or policy.day_of(host)
  return host.crypto.sha256_hex(table.concat(what, "\n")):sub(1, 16)
end

-- Each number once: the first person found with it, the school first
-- seen, and the children they are written to about.
local function recipients(a, school)
  local list, by_phone, no_phone, seen_no_phone = {}, {}, 0, {}
  for row in host.db.rows(AUDIENCE[a.to].sql, { school = school and school.id }) do
    if not row.phone then
      if not seen_no_phone[row.id] then
        seen_no_phone[row.id] = true
        no_phone = no_phone + 1
      end
    else
      local r = by_phone[row.phone]
      if not r then
        r = { phone = row.phone, person = row.id, name = row.name, school = row.school, children = {}, seen = {} }
        by_phone[row.phone] = r
        list[#list + 1] = r
      elseif r.person ~= row.id then
        r.person = false -- a number several people share
      end
      if row.child_id and not r.seen[row.child_id] then
        r.seen[row.child_id] = true
        r.children[#r.children + 1] = opts.mask_names and host.text.mask_name(row.child) or row.child
      end
    end
  end
  return list, no_phone
end

-- What one recipient gets: {text=} or {template=, params=}. A text may
-- use {{name}} (the recipient), {{school}}, {{child}} (families: the
-- children's names, masked unless mask_names = false) and --params.
local function message_for(a, r)
  if a.template then return { template = a.template, params = a.params } end
  local params = {}
  for k, v in pairs(a.params) do params[k] = v end
  params.name = params.name or r.name
  params.school = params.school or r.school or ""
  if #r.children > 0 then
    local shown = {}
    for i = 1, math.min(#r.children, 3) do shown[i] = r.children[i] end
    params.child = params.child or (table.concat(shown, "、") .. (#r.children > 3 and "等" or ""))
  end
  return { text = host.text.render(a.text, params) }
end

local function fmt_params(params)
  local names = {}
  for k in pairs(params) do names[#names + 1] = k end
  table.sort(names)
  for i, k in ipairs(names) do names[i] = k .. "=" .. tostring(params[k]) end
  return table.concat(names, ", ")
end

-- Every recipient's message, rendered now so that a bad placeholder shows
-- before anything is printed or asked; and the SMS parts they make.
local function render_all(a, list)
  local msgs, parts = {}, { min = math.huge, max = 0, total = 0 }
  for i, r in ipairs(list) do
    local m = message_for(a, r)
    msgs[i] = m
    if m.template and i == 1 then
      -- The local text of the template, as host.send will queue it.
      local text, why = host.sms.render(m.template, m.params)
      if not text then error(why, 0) end
      msgs.template_text = text
    end
    local text = m.text or msgs.template_text
    if text then
      local p = host.sms.count(text).parts
      parts.total = parts.total + p
      parts.min = math.min(parts.min, p)
      parts.max = math.max(parts.max, p)
    end
  end
  return msgs, parts
end

local function print_preview(cmd, a, school, list, no_phone, msgs, parts)
  local counts, schools = {}, {}
  for _, r in ipairs(list) do
    local s = r.school or "（未填学校）"
    if not counts[s] then
      counts[s] = 0
      schools[#schools + 1] = s
    end
    counts[s] = counts[s] + 1
  end
  local width = 0
  for _, s in ipairs(schools) do width = math.max(width, host.text.width(s)) end

  cmd.print("广播预览")
  cmd.print("  发送对象: " .. AUDIENCE[a.to].label)
  cmd.print("  学校: " .. (school and school.name or "全部"))
  cmd.print(("  收件人: %d 人（每个号码一条）"):format(#list))
  cmd.print(("  无手机号: %d 人（不发送）"):format(no_phone))
  if #schools > 0 then
    cmd.print("  按学校:")
    for _, s in ipairs(schools) do
      cmd.print(("    %s%s  %d"):format(s, string.rep(" ", width - host.text.width(s)), counts[s]))
    end
  end
  if a.template then
    cmd.print(("  模板: %s（参数: %s）"):format(a.template,
                                              next(a.params) and fmt_params(a.params) or "无"))
  end
  if #list > 0 then
    local r = list[1]
    local who = r.name
    if #r.children > 0 then who = r.children[1] .. "的" .. (a.to == "parents" and "家长" or "监护人") end
    cmd.print(("  示例（发给 %s，%s）:"):format(who, host.phone.mask(r.phone)))
    cmd.print("    " .. (msgs[1].text or msgs.template_text))
    local per = parts.min == parts.max and tostring(parts.max) or (parts.min .. "–" .. parts.max)
    cmd.print(("  短信条数: 每条 %s 条，共 %d 条"):format(per, parts.total))
  end
  cmd.print("  发送时间: " .. (a.at and (a.at .. " 起") or "立即（夜间免打扰时段内的短信顺延到早上）"))
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function run(cmd)
  local a, err = parse_args(cmd)
  if not a then return usage_error(cmd, err) end
  if a.help then
    cmd.print("usage: yizhan " .. USAGE)
    return 0
  end

  local school
  if a.school then
    school = host.db.one("SELECT id, name FROM schools WHERE name = ?", a.school)
      or (a.school:match("^%d+$") and host.db.one("SELECT id, name FROM schools WHERE id = ?",
                                                   tonumber(a.school)))
    if not school then
      cmd.err(("broadcast: no school named '%s'"):format(a.school))
      return 1
    end
  end

  local list, no_phone = recipients(a, school)
  local ok, msgs, parts = pcall(render_all, a, list)
  if not ok then return usage_error(cmd, (tostring(msgs):gsub("^.-:%d+: ", ""))) end

  local id = broadcast_id(a, school)
  local function queue(r, m)
    m.to = r.phone
    m.key = ("broadcast:%s:%s"):format(id, r.person and tostring(r.person)
                                             or host.crypto.sha256_hex(r.phone):sub(1, 16))
    m.not_before = a.at
    m.channel = a.channel or opts.channel or nil
    m.meta = { broadcast = id }
    return host.send(m)
  end

  -- A trial of the first message, undone: an unknown template, a missing
  -- parameter or an unknown channel shows before anyone is asked.
  if #list > 0 then
    local undo = {}
    local _, probe_err = pcall(host.db.tx, function()
      queue(list[1], { text = msgs[1].text, template = msgs[1].template, params = msgs[1].params })
      error(undo)
    end)
    if probe_err ~= undo then
      cmd.err("broadcast: " .. (tostring(probe_err):gsub("^.-:%d+: ", "")))
      return 1
    end
  end

  print_preview(cmd, a, school, list, no_phone, msgs, parts)
  if #list == 0 then
    cmd.err("broadcast: nobody to send to")
    return 1
  end

  -- Without --yes someone must answer: at a terminal, or a script that
  -- writes the answer to standard input. No answer (standard input closed
  -- or empty, as under cron) refuses.
  if not a.yes then
    local answer = cmd.ask(("发送给 %d 人？输入 yes 确认: "):format(#list))
    if not answer then
      cmd.err("broadcast: no answer on standard input, nothing sent"
              .. " (not at a terminal? add --yes to send without asking)")
      return 1
    end
    answer = trim(answer):lower()
    if answer ~= "yes" and answer ~= "y" and answer ~= "是" then
      cmd.print("已取消，没有发送。")
      return 1
    end
  end

  local queued, already = 0, 0
  host.db.tx(function()
    for i, r in ipairs(list) do
      local res = queue(r, msgs[i])
      if res.existing then already = already + 1 else queued = queued + 1 end
      if i % 50 == 0 then cmd.progress(i, #list, "queued") end
    end
  end)
  cmd.progress()
  cmd.print(("已加入发送队列: %d 条（broadcast %s）"):format(queued, id))
  cmd.print(("already queued: %d（此前已加入队列，不重复发送）"):format(already))
  local detail = {
    to = a.to, school = school and school.name or host.json.null, recipients = #list,
    queued = queued, already_queued = already, no_phone = no_phone,
    template = a.template or host.json.null, not_before = a.at or host.json.null,
  }
  detail.parts = parts.total
  host.audit("broadcast", id, host.json.encode(detail))
  host.log.info("broadcast queued", { id = id, to = a.to, queued = queued,
                                      already_queued = already, no_phone = no_phone })
  return 0
end

return {
  name = "broadcast",
  version = "1.0.0",
  description = "给全体家长、监护人或教师群发短信（预览、确认、不重复发送）",
  requires = { "registry" },
  access = { read = { "schools", "people", "children", "guardianships" }, send = true },
  options = {
    mask_names = true, -- {{child}} as 张*明 instead of 张小明
    channel = false,   -- the default channel, or a channel's name
  },
  setup = function(h, o)
    host, opts = h, o
    h.command("broadcast", {
      usage = USAGE,
      help = "群发公开信：预览收件人和短信条数，确认后加入发送队列",
      run = run,
    })
  end,
}
