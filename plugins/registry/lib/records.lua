-- The record commands school staff use every day: look a child up (show,
-- find), write down a letter, a call or a talk (log), a home visit (visit
-- done), who the child's proxy parents are (pair, unpair), and the term
-- survey's confirmation (confirm).
--
-- This is the staff's tool, on the school's own machine: it shows full names
-- and full phone numbers (a class teacher has to call the grandmother), and
-- every look at a child's card is in the audit log. Errors say what to type
-- instead and exit 1; a command typed wrong prints its usage and exits 2.
-- Every write is one transaction, and events go out after it commits.
local M = {}

local GENDER = { M = "男", F = "女" }
local AWAY = { father = "父亲外出", mother = "母亲外出", both = "父母均外出" }
local STATUS = { active = "留守", returned = "父母返乡（不再留守）", graduated = "已毕业",
                 transferred = "已转学" }
local PERFORMANCE = { good = "较好", medium = "中等", poor = "较差" }
local RELATION = { father = "父亲", mother = "母亲", paternal_grandparent = "祖父母",
                   maternal_grandparent = "外祖父母", other_relative = "其他亲属", other = "其他" }
local PERSON_KIND = { parent = "家长", guardian = "监护人", teacher = "教师", volunteer = "志愿者" }
local VISIT_KIND = { term_start = "开学家访", mid_term = "期中家访", term_end = "期末家访",
                     ad_hoc = "临时家访" }
local CONTACT_KIND = { letter = "写信", call = "打电话", guardian_contact = "联系监护人", talk = "谈心" }

-- What staff may type for a status or a contact kind.
local STATUS_IN = {
  active = "active", returned = "returned", graduated = "graduated", transferred = "transferred",
  ["留守"] = "active", ["在册"] = "active", ["返乡"] = "returned", ["不再留守"] = "returned", ["毕业"] = "graduated",
  ["已毕业"] = "graduated", ["转学"] = "transferred", ["已转学"] = "transferred",
}
local CONTACT_IN = {
  letter = "letter", call = "call", talk = "talk",
  ["guardian-contact"] = "guardian_contact", guardian_contact = "guardian_contact",
}
local VISIT_IN = { term_start = "term_start", mid_term = "mid_term", term_end = "term_end",
                   ad_hoc = "ad_hoc", ["term-start"] = "term_start", ["mid-term"] = "mid_term",
                   ["term-end"] = "term_end", ["ad-hoc"] = "ad_hoc" }

local CHILD_COLUMNS = [[
  c.id, c.name, c.gender, c.birth_date, c.school_id, s.name AS school, c.class,
  c.village, c.away, c.away_since, c.status, c.performance, c.notes,
  c.confirmed_on]]

local FIND_LIMIT = 50
local LOG_ENTRIES = 10

-- A failure the command reports as it is (exit 1), or a usage error (exit 2).
local function fail(msg, status)
  error({ msg = msg, status = status or 1 }, 0)
end

local function usage_error(msg)
  fail(msg, 2)
end

-- The command line, read by cmd.options ("--date 2026-09-01" and
-- "--date=2026-09-01"; a value is never another option): spec maps each
-- option to "flag" or "value". --help or -h prints the usage.
local function parse(cmd, spec)
  local opts, pos = cmd.options(spec)
  if not opts then usage_error(pos) end
  if opts.help then error({ help = true }, 0) end
  return opts, pos
end

-- Runs a command body, turning fail() into the exit status and the message.
local function runner(usage, body)
  return function(cmd)
    local ok, res = pcall(body, cmd)
    if ok then return res end
    if type(res) == "table" and res.help then
      cmd.print("usage: yizhan " .. usage)
      return 0
    end
    if type(res) == "table" and res.msg then
      if res.status == 2 then
        cmd.err("yizhan " .. cmd.name .. ": " .. res.msg)
        cmd.err("usage: yizhan " .. usage)
      else
        cmd.err(res.msg)
      end
      return res.status
    end
    error(res, 0) -- a bug, not the user's: the CLI says so with the message
  end
end

local function pad(host, s, width)
  s = tostring(s or "")
  local w = host.text.width(s)
  if w >= width then return s end
  return s .. string.rep(" ", width - w)
end

local function today(host)
  local d = host.date()
  return ("%04d-%02d-%02d"):format(d.year, d.month, d.day)
end

-- A date typed on the command line (in any form county staff write), never
-- in the future: a visit or a letter that has not happened is not recorded.
local function past_date(host, s, what)
  if s == nil then return today(host) end
  local d, err = host.text.date(s)
  if not d then usage_error(("--%s '%s': %s"):format(what, s, err or "not a date")) end
  if d > today(host) then fail(("--%s %s is in the future (today is %s)"):format(what, d, today(host))) end
  return d
end

-- A phone for staff to dial: mainland numbers without the +86.
local function dial(phone)
  if not phone then return "（无电话）" end
  return phone:match("^%+86(%d+)$") or phone
end

local function like_escape(s)
  return (s:gsub("[\\%%_]", "\\%0"))
end

local function label(child)
  return ("%s #%d"):format(child.name, child.id)
end

-- A school by id (#3 or 3) or by name.
local function find_school(host, spec)
  local id = spec:match("^#?(%d+)$")
  local row
  if id then
    row = host.db.one("SELECT id, name FROM schools WHERE id = ?", tonumber(id))
  end
  row = row or host.db.one("SELECT id, name FROM schools WHERE name = ?", spec)
  if row then return row end
  local near = {}
  for r in host.db.rows("SELECT name FROM schools WHERE name LIKE ? ESCAPE '\\' ORDER BY name LIMIT 5",
                        "%" .. like_escape(spec) .. "%") do
    near[#near + 1] = r.name
  end
  fail(("no school '%s'%s"):format(spec, #near > 0 and (" (did you mean " .. table.concat(near, ", ") .. "?)") or ""))
end

-- Names one character away from 'name' (a wrong character typed or heard):
-- "did you mean 张小明 #12?".
local function near_names(host, name, school_id, class)
  local chars = {}
  for _, c in utf8.codes(name) do chars[#chars + 1] = utf8.char(c) end
  if #chars < 2 or #chars > 8 then return {} end
  local where, params = {}, {}
  for i = 1, #chars do
    local pat = {}
    for j, ch in ipairs(chars) do pat[j] = (i == j) and "_" or like_escape(ch) end
    where[#where + 1] = "c.name LIKE ? ESCAPE '\\'"
    params[#params + 1] = table.concat(pat)
  end
  local sql = "SELECT c.id, c.name FROM children c WHERE (" .. table.concat(where, " OR ") .. ")"
  if school_id then
    sql = sql .. " AND c.school_id = ?"
    params[#params + 1] = school_id
  end
  if class then
    sql = sql .. " AND c.class = ?"
    params[#params + 1] = class
  end
  sql = sql .. " ORDER BY c.status <> 'active', c.id LIMIT 3"
  local out = {}
  for r in host.db.rows(sql, table.unpack(params)) do out[#out + 1] = label(r) end
  return out
end

-- The child a staff member means: an id (#12 or 12), or a name, narrowed by
-- --school and --class. Several children of that name are listed and the
-- command stops: picking one would write to the wrong child's record.
local function find_child(host, spec, opts)
  local id = spec:match("^#?(%d+)$")
  if id then
    local row = host.db.one("SELECT" .. CHILD_COLUMNS ..
                            " FROM children c JOIN schools s ON s.id = c.school_id WHERE c.id = ?", tonumber(id))
    if not row then fail(("no child #%s"):format(id)) end
    return row
  end
  local school = opts.school and find_school(host, opts.school)
  local sql = "SELECT" .. CHILD_COLUMNS ..
              " FROM children c JOIN schools s ON s.id = c.school_id WHERE c.name = ?"
  local params = { spec }
  if school then
    sql = sql .. " AND c.school_id = ?"
    params[#params + 1] = school.id
  end
  if opts.class then
    sql = sql .. " AND c.class = ?"
    params[#params + 1] = opts.class
  end
  local rows = {}
  for r in host.db.rows(sql .. " ORDER BY s.name, c.class, c.id LIMIT 21", table.unpack(params)) do
    rows[#rows + 1] = r
  end
  if #rows == 1 then return rows[1] end
  if #rows == 0 then
    local where = ""
    if school then where = " at " .. school.name end
    if opts.class then where = where .. " in class " .. opts.class end
    local near = near_names(host, spec, school and school.id, opts.class)
    fail(("no child matches '%s'%s%s"):format(spec, where,
         #near > 0 and (" (did you mean " .. table.concat(near, ", ") .. "?)") or ""))
  end
  local lines = { ("several children match '%s'; name one by id (#%d) or add --school / --class:")
                  :format(spec, rows[1].id) }
  for i, r in ipairs(rows) do
    if i > 20 then
      lines[#lines + 1] = "  ..."
      break
    end
    lines[#lines + 1] = ("  #%-6d %s  %s  %s  %s  %s"):format(r.id, r.name, r.school, r.class, r.birth_date,
                                                            STATUS[r.status] or r.status)
  end
  fail(table.concat(lines, "\n"))
end

-- A teacher or volunteer by id or name; with several of that name, the ones
-- at the child's school, else the list.
local function find_person(host, spec, child, kinds)
  kinds = kinds or { "teacher", "volunteer" }
  local kind_sql = "kind IN ('" .. table.concat(kinds, "', '") .. "')"
  local id = spec:match("^#?(%d+)$")
  if id then
    local row = host.db.one("SELECT id, name, kind, school_id FROM people WHERE id = ?", tonumber(id))
    if not row then fail(("no person #%s"):format(id)) end
    for _, k in ipairs(kinds) do
      if row.kind == k then return row end
    end
    fail(("%s #%d is a %s, not a %s"):format(row.name, row.id, row.kind, table.concat(kinds, " or ")))
  end
  local rows = {}
  for r in host.db.rows("SELECT p.id, p.name, p.kind, p.school_id, p.class, s.name AS school" ..
                        " FROM people p LEFT JOIN schools s ON s.id = p.school_id" ..
                        " WHERE p.name = ? AND p." .. kind_sql .. " ORDER BY p.id LIMIT 21", spec) do
    rows[#rows + 1] = r
  end
  if #rows > 1 and child then
    -- the child's own people first (a guardian or parent has no school),
    -- then those of the child's school
    local own, here = {}, {}
    for _, r in ipairs(rows) do
      if host.db.one("SELECT 1 AS x FROM guardianships WHERE child_id = ? AND person_id = ?", child.id, r.id) then
        own[#own + 1] = r
      end
      if r.school_id == child.school_id then here[#here + 1] = r end
    end
    if #own >= 1 then
      rows = own
    elseif #here >= 1 then
      rows = here
    end
  end
  if #rows == 1 then return rows[1] end
  if #rows == 0 then
    fail(("no %s named '%s'"):format(#kinds > 2 and "person" or "teacher or volunteer", spec))
  end
  local lines = { ("several people are called '%s'; name one by id:"):format(spec) }
  for _, r in ipairs(rows) do
    lines[#lines + 1] = ("  #%-6d %s  %s  %s%s"):format(r.id, r.name, PERSON_KIND[r.kind] or r.kind,
                                                      r.school or "", r.class and (" " .. r.class) or "")
  end
  fail(table.concat(lines, "\n"))
end

local function age(birth, now)
  local by, bm, bd = birth:match("^(%d+)-(%d+)-(%d+)$")
  local ny, nm, nd = now:match("^(%d+)-(%d+)-(%d+)$")
  local a = tonumber(ny) - tonumber(by)
  if tonumber(nm) < tonumber(bm) or (tonumber(nm) == tonumber(bm) and tonumber(nd) < tonumber(bd)) then
    a = a - 1
  end
  return a
end

-- The school year around a date: 1 September to 31 August.
local function school_year(date)
  local y, m = date:match("^(%d+)-(%d+)")
  y = tonumber(y)
  if tonumber(m) < 9 then y = y - 1 end
  return ("%04d-09-01"):format(y), ("%04d-08-31"):format(y + 1)
end

------------------------------------------------------------------ show

local function show(host, cmd)
  local opts, pos = parse(cmd, { school = "value", class = "value" })
  if #pos ~= 1 then usage_error(#pos == 0 and "name a child" or "one child at a time") end
  local c = find_child(host, pos[1], opts)
  local now = today(host)
  local out = {}
  local function line(s) out[#out + 1] = (s:gsub("%s+$", "")) end
  local function field(name, value)
    if value ~= nil and value ~= "" then line("  " .. pad(host, name, 10) .. value) end
  end

  line(("%s  #%d"):format(c.name, c.id))
  field("性别", GENDER[c.gender] or c.gender)
  field("出生日期", ("%s（%d岁）"):format(c.birth_date, age(c.birth_date, now)))
  field("学校", c.school .. "  " .. c.class)
  field("村", c.village)
  field("外出", (AWAY[c.away] or c.away) .. (c.away_since and ("，自" .. c.away_since) or ""))
  field("状态", STATUS[c.status] or c.status)
  field("学习表现", c.performance and PERFORMANCE[c.performance] or "未填")
  field("备注", c.notes)
  field("核对日期", c.confirmed_on or "未核对")

  line("监护人与父母")
  local n = 0
  for g in host.db.rows([[
      SELECT p.id, p.name, p.phone, g.relation, g.is_primary, g.workplace
        FROM guardianships g JOIN people p ON p.id = g.person_id
       WHERE g.child_id = ? ORDER BY g.is_primary DESC, p.id]], c.id) do
    n = n + 1
    local extra = {}
    if g.is_primary == 1 then extra[#extra + 1] = "主要监护人" end
    if g.workplace then extra[#extra + 1] = "务工地：" .. g.workplace end
    line("  " .. pad(host, RELATION[g.relation] or g.relation, 10) .. pad(host, g.name, 10)
         .. pad(host, dial(g.phone), 14) .. table.concat(extra, "  "))
  end
  if n == 0 then line("  （无）") end

  line("结对帮扶（代理家长）")
  n = 0
  for r in host.db.rows([[
      SELECT p.name, p.kind, p.phone, r.since, r."until" AS till FROM pairings r JOIN people p ON p.id = r.person_id
       WHERE r.child_id = ? AND (r."until" IS NULL OR r."until" > ?) ORDER BY r.since, r.id]], c.id, now) do
    n = n + 1
    line("  " .. pad(host, r.name, 10) .. pad(host, PERSON_KIND[r.kind] or r.kind, 8)
         .. pad(host, dial(r.phone), 14) .. "自" .. r.since .. (r.till and ("至" .. r.till) or ""))
  end
  if n == 0 then line("  （无）") end

  local from, to = school_year(now)
  local visits, done = {}, 0
  for v in host.db.rows([[
      SELECT v.kind, v.term, v.due, v.done, v.notes, p.name AS visitor
        FROM visits v LEFT JOIN people p ON p.id = v.visitor_id
       WHERE v.child_id = ? AND coalesce(v.due, v.done) BETWEEN ? AND ?
       ORDER BY coalesce(v.due, v.done), v.id]], c.id, from, to) do
    visits[#visits + 1] = v
    if v.done then done = done + 1 end
  end
  line(("本学年家访（已完成 %d / %d）"):format(done, #visits))
  for _, v in ipairs(visits) do
    local state
    if v.done then
      state = "已于" .. v.done .. "完成"
    elseif v.due < now then
      state = "逾期未完成"
    else
      state = "未完成"
    end
    line("  " .. pad(host, v.term or "", 8) .. pad(host, VISIT_KIND[v.kind] or v.kind, 10)
         .. pad(host, v.due and ("应于" .. v.due) or "", 16) .. pad(host, state, 22)
         .. (v.visitor or "") .. (v.notes and ("  " .. v.notes) or ""))
  end
  if #visits == 0 then line("  （无）") end

  line(("最近联系记录（最多 %d 条）"):format(LOG_ENTRIES))
  n = 0
  for r in host.db.rows([[
      SELECT l.on_date, l.kind, l.notes, p.name AS by_name
        FROM contact_log l LEFT JOIN people p ON p.id = l.by_id
       WHERE l.child_id = ? ORDER BY l.on_date DESC, l.id DESC LIMIT ?]], c.id, LOG_ENTRIES) do
    n = n + 1
    line("  " .. r.on_date .. "  " .. pad(host, CONTACT_KIND[r.kind] or r.kind, 12)
         .. pad(host, r.by_name or "", 10) .. (r.notes or ""))
  end
  if n == 0 then line("  （无）") end

  -- Who looked at a minor's card, and when, is kept.
  host.audit("registry.show", "child:" .. c.id)
  cmd.out(table.concat(out, "\n") .. "\n")
end

------------------------------------------------------------------ find

local function find(host, cmd)
  local opts, pos = parse(cmd, { school = "value", class = "value", all = "flag" })
  local text = table.concat(pos, " "):match("^%s*(.-)%s*$")
  if text == "" then usage_error("give a name, part of a name or of a phone number") end
  -- Digits (138 0013, +86 138...) also search the phones, without the +86.
  local compact, digits = text:gsub("[%s%-]", ""), nil
  if compact:match("^%+?%d+$") then
    digits = compact:gsub("^%+86", ""):gsub("^%+", "")
    if #digits < 3 then digits = nil end
  end
  local pat = "%" .. like_escape(text) .. "%"
  local where = [[
      (c.name LIKE :pat ESCAPE '\' OR c.id IN (
         SELECT g.child_id FROM guardianships g JOIN people p ON p.id = g.person_id
          WHERE p.name LIKE :pat ESCAPE '\'
             OR (:digits IS NOT NULL AND
                 (CASE WHEN p.phone LIKE '+86%' THEN substr(p.phone, 4) ELSE substr(p.phone, 2) END)
                   LIKE '%' || :digits || '%')))]]
  local params = { pat = pat, digits = digits } -- no digits: NULL
  if opts.school then
    where = where .. " AND c.school_id = :school"
    params.school = find_school(host, opts.school).id
  end
  if opts.class then
    where = where .. " AND c.class = :class"
    params.class = opts.class
  end
  local bind = params
  local total = host.db.one("SELECT count(*) AS n FROM children c WHERE " .. where, bind).n
  if total == 0 then
    cmd.err(("no child, guardian or phone matches '%s'"):format(text))
    return 1
  end
  local limit = opts.all and total or FIND_LIMIT
  bind.limit = limit
  local rows = {}
  for r in host.db.rows("SELECT c.id, c.name, s.name AS school, c.class, c.status" ..
                        " FROM children c JOIN schools s ON s.id = c.school_id WHERE " .. where ..
                        " ORDER BY s.name, c.class, c.name, c.id LIMIT :limit", bind) do
    rows[#rows + 1] = r
  end
  local wname, wschool, wclass = 4, 4, 4
  for _, r in ipairs(rows) do
    wname = math.max(wname, host.text.width(r.name))
    wschool = math.max(wschool, host.text.width(r.school))
    wclass = math.max(wclass, host.text.width(r.class))
  end
  for _, r in ipairs(rows) do
    local via = ""
    if not r.name:find(text, 1, true) then
      -- Found through a guardian or parent: say whom.
      local g = host.db.one([[
          SELECT p.name, g.relation FROM guardianships g JOIN people p ON p.id = g.person_id
           WHERE g.child_id = :child AND (p.name LIKE :pat ESCAPE '\' OR (:digits IS NOT NULL AND
                 (CASE WHEN p.phone LIKE '+86%' THEN substr(p.phone, 4) ELSE substr(p.phone, 2) END)
                   LIKE '%' || :digits || '%'))
           ORDER BY g.is_primary DESC LIMIT 1]], { child = r.id, pat = pat, digits = params.digits })
      if g then via = ("  （%s %s）"):format(RELATION[g.relation] or g.relation, g.name) end
    end
    cmd.print(pad(host, "#" .. r.id, 8) .. pad(host, r.name, wname + 2) .. pad(host, r.school, wschool + 2)
              .. pad(host, r.class, wclass + 2) .. (STATUS[r.status] or r.status) .. via)
  end
  if total > #rows then
    cmd.print(("… %d more (narrow with --school / --class, or --all)"):format(total - #rows))
  end
  return 0
end

------------------------------------------------------------------ log

local function log_contact(host, cmd)
  local opts, pos = parse(cmd, { date = "value", by = "value", notes = "value", school = "value",
                                 class = "value" })
  if #pos ~= 2 then usage_error("give a kind and a child") end
  local kind = CONTACT_IN[pos[1]]
  if not kind then
    usage_error(("unknown kind '%s' (expected letter, call, guardian-contact or talk)"):format(pos[1]))
  end
  local date = past_date(host, opts.date, "date")
  local c = find_child(host, pos[2], opts)
  local by = opts.by and find_person(host, opts.by, c, { "teacher", "volunteer", "guardian", "parent" })
  local id
  host.db.tx(function()
    local _
    _, id = host.db.exec("INSERT INTO contact_log(child_id, kind, on_date, by_id, notes, logged_at)" ..
                         " VALUES (?, ?, ?, ?, ?, ?)", c.id, kind, date, by and by.id or host.json.null,
                         opts.notes or host.json.null, host.now())
    host.audit("registry.log", "child:" .. c.id, kind .. " " .. date)
  end)
  cmd.print(("logged %s (%s) for %s on %s%s (entry %d)"):format(kind, CONTACT_KIND[kind], label(c), date,
                                                                by and (" by " .. by.name) or "", id))
  return 0
end

------------------------------------------------------------------ visit

-- The term a visit on `date` belongs to: the calendar's term holding it,
-- else, in the holidays, the one that ended last (within a year), whose
-- visits a teacher may still be catching up on.
local function visit_term(host, date)
  local term = host.calendar.term(date)
  for n = 1, 366 do
    if term then return term end
    term = host.calendar.term(host.db.one("SELECT date(?, ?) AS d", date, ("-%d days"):format(n)).d)
  end
  return term
end

local function visit(host, cmd)
  local opts, pos = parse(cmd, { date = "value", kind = "value", notes = "value", by = "value", school = "value",
                                 class = "value" })
  if pos[1] ~= "done" then
    usage_error(pos[1] and ("unknown visit command '" .. pos[1] .. "'") or "say 'visit done CHILD'")
  end
  if #pos ~= 2 then usage_error("give one child") end
  local kind
  if opts.kind then
    kind = VISIT_IN[opts.kind]
    if not kind then
      usage_error(("--kind: unknown kind '%s' (expected term_start, mid_term, term_end or ad_hoc)")
                  :format(opts.kind))
    end
  end
  local date = past_date(host, opts.date, "date")
  local c = find_child(host, pos[2], opts)
  local by = opts.by and find_person(host, opts.by, c)
  local said
  host.db.tx(function()
    local open
    if kind then
      if kind ~= "ad_hoc" then
        open = host.db.one([[
            SELECT id, kind, term, due FROM visits
             WHERE child_id = ? AND done IS NULL AND due IS NOT NULL AND kind = ?
             ORDER BY due, id LIMIT 1]], c.id, kind)
      end
    else
      -- Without --kind, a visit counts for one of its own term due within
      -- 30 days after it (a visit in November is not January's term-end
      -- visit), or earlier in the term (a late visit); never for one of
      -- last term's still open.
      local term = visit_term(host, date)
      open = term and host.db.one([[
          SELECT id, kind, term, due FROM visits
           WHERE child_id = ? AND done IS NULL AND due IS NOT NULL AND kind <> 'ad_hoc'
             AND term = ? AND due <= date(?, '+30 days')
           ORDER BY due, id LIMIT 1]], c.id, term.name, date)
    end
    if open then
      host.db.exec("UPDATE visits SET done = ?, notes = coalesce(?, notes)," ..
                   " visitor_id = coalesce(?, visitor_id) WHERE id = ?",
                   date, opts.notes or host.json.null, by and by.id or host.json.null, open.id)
      said = ("marked the %s %s visit of %s (due %s) done on %s"):format(open.term, open.kind, label(c),
                                                                        open.due, date)
      host.audit("registry.visit", "child:" .. c.id, open.kind .. " " .. open.term .. " done " .. date)
    else
      local term = host.calendar.term(date)
      local _, id = host.db.exec("INSERT INTO visits(child_id, visitor_id, kind, term, due, done, notes)" ..
                                 " VALUES (?, ?, 'ad_hoc', ?, NULL, ?, ?)", c.id, by and by.id or host.json.null,
                                 term and term.name or host.json.null, date, opts.notes or host.json.null)
      said = ("%srecorded an ad hoc visit to %s on %s (visit %d)")
             :format(kind == "ad_hoc" and "" or ("no open " .. (kind and (kind .. " ") or "")
                                                 .. "visit is due; "), label(c), date, id)
      host.audit("registry.visit", "child:" .. c.id, "ad_hoc done " .. date)
    end
  end)
  cmd.print(said)
  return 0
end

------------------------------------------------------------------ pair, unpair

local function pair(host, cmd)
  local opts, pos = parse(cmd, { since = "value", school = "value", class = "value" })
  if #pos ~= 2 then usage_error("give a child and a teacher or volunteer") end
  local since = past_date(host, opts.since, "since")
  local c = find_child(host, pos[1], opts)
  local p = find_person(host, pos[2], c)
  host.db.tx(function()
    local active = {}
    -- Running pairings: open, or ending after today.
    for r in host.db.rows([[SELECT p.id, p.name FROM pairings r JOIN people p ON p.id = r.person_id
                             WHERE r.child_id = ? AND (r."until" IS NULL OR r."until" > ?)
                             ORDER BY r.since, r.id]], c.id, today(host)) do
      if r.id == p.id then fail(("%s is already paired with %s"):format(c.name, p.name)) end
      active[#active + 1] = r.name
    end
    if #active >= 2 then
      fail(("%s already has two proxy parents: %s (unpair one first: registry unpair %s PERSON)")
           :format(c.name, table.concat(active, ", "), "#" .. c.id))
    end
    host.db.exec("INSERT INTO pairings(child_id, person_id, since) VALUES (?, ?, ?)", c.id, p.id, since)
    host.audit("registry.pair", "child:" .. c.id, "person:" .. p.id .. " since " .. since)
  end)
  cmd.print(("paired %s with %s (%s) since %s"):format(label(c), p.name, PERSON_KIND[p.kind] or p.kind, since))
  return 0
end

local function unpair(host, cmd)
  local opts, pos = parse(cmd, { date = "value", school = "value", class = "value" })
  if #pos ~= 2 then usage_error("give a child and a teacher or volunteer") end
  local date = past_date(host, opts.date, "date")
  local c = find_child(host, pos[1], opts)
  local p = find_person(host, pos[2], c)
  local said
  host.db.tx(function()
    local r = host.db.one([[SELECT id, since FROM pairings
                            WHERE child_id = ? AND person_id = ? AND ("until" IS NULL OR "until" > ?)
                            ORDER BY since DESC, id DESC]], c.id, p.id, date)
    if not r then fail(("%s is not paired with %s"):format(c.name, p.name)) end
    if r.since > today(host) then
      -- it has not begun: it is called off, not ended
      host.db.exec("DELETE FROM pairings WHERE id = ?", r.id)
      host.audit("registry.unpair", "child:" .. c.id, "person:" .. p.id .. " called off, was from " .. r.since)
      said = ("%s will not be paired with %s (it was to begin on %s)"):format(label(c), p.name, r.since)
      return
    end
    if date < r.since then
      fail(("--date %s is before the pairing began (%s)"):format(date, r.since))
    end
    host.db.exec([[UPDATE pairings SET "until" = ? WHERE id = ?]], date, r.id)
    host.audit("registry.unpair", "child:" .. c.id, "person:" .. p.id .. " until " .. date)
    said = ("%s is no longer paired with %s (since %s)"):format(label(c), p.name, date)
  end)
  cmd.print(said)
  return 0
end

------------------------------------------------------------------ confirm

-- --all-class SCHOOL CLASS takes two values, which cmd.options cannot
-- express: it reads --all-class as a flag, and SCHOOL and CLASS are the two
-- operands right after it on the command line, taken out of `pos` (the
-- children named). Neither may be an option: --all-class 阳光小学 --date D is
-- an error, not a class named --date.
local function all_class(args, pos)
  local function operand(a) return a ~= nil and (a == "-" or a:sub(1, 1) ~= "-") end
  for i, a in ipairs(args) do
    if a == "--" then break end
    if a == "--all-class" then
      local school, class = args[i + 1], args[i + 2]
      if not (operand(school) and operand(class)) then usage_error("--all-class needs 2 values") end
      for k = 1, #pos - 1 do
        if pos[k] == school and pos[k + 1] == class then
          table.remove(pos, k + 1)
          table.remove(pos, k)
          return { school, class }
        end
      end
    end
  end
  usage_error("--all-class needs 2 values")
end

local function confirm(host, cmd)
  local opts, pos = parse(cmd, { ["all-class"] = "flag", status = "value", date = "value", school = "value",
                                 class = "value" })
  local class_of = opts["all-class"] and all_class(cmd.args, pos)
  if #pos == 0 and not class_of then usage_error("name the children, or --all-class SCHOOL CLASS") end
  local status
  if opts.status then
    status = STATUS_IN[opts.status]
    if not status then
      usage_error(("--status: unknown status '%s' (expected active, returned, graduated or transferred)")
                  :format(opts.status))
    end
  end
  local date = past_date(host, opts.date, "date")
  -- Resolve every child before writing anything: one bad name, no change.
  local children, seen = {}, {}
  local function add(c)
    if not seen[c.id] then
      seen[c.id] = true
      children[#children + 1] = c
    end
  end
  for _, spec in ipairs(pos) do add(find_child(host, spec, opts)) end
  if class_of then
    local school = find_school(host, class_of[1])
    local class = class_of[2]
    local n = 0
    for r in host.db.rows("SELECT" .. CHILD_COLUMNS .. " FROM children c JOIN schools s ON s.id = c.school_id" ..
                          " WHERE c.school_id = ? AND c.class = ? AND c.status = 'active' ORDER BY c.name, c.id",
                          school.id, class) do
      n = n + 1
      add(r)
    end
    if n == 0 then fail(("no active child in %s %s"):format(school.name, class)) end
  end

  local events, lines = {}, {}
  host.db.tx(function()
    for _, c in ipairs(children) do
      if status and status ~= c.status then
        host.db.exec("UPDATE children SET confirmed_on = max(coalesce(confirmed_on, ''), ?1), status = ?2,"
                     .. " changed_at = ?3 WHERE id = ?4", date, status, host.now(), c.id)
        -- As a re-import says it: the change, and a child who is no
        -- longer left behind.
        events[#events + 1] = { "registry.child_changed",
                                { child = c.id, school = c.school_id, class = c.class, fields = { "status" } } }
        if c.status == "active" then
          events[#events + 1] = { "registry.child_left",
                                  { child = c.id, school = c.school_id, class = c.class, status = status,
                                    old_status = c.status } }
        end
        host.audit("registry.confirm", "child:" .. c.id, "status " .. c.status .. " -> " .. status)
        lines[#lines + 1] = ("confirmed %s (%s %s) on %s, status %s -> %s"):format(label(c), c.school, c.class,
                                                                                 date, c.status, status)
      else
        -- never back in time: a later confirmation (an import) stands
        host.db.exec("UPDATE children SET confirmed_on = max(coalesce(confirmed_on, ''), ?1) WHERE id = ?2",
                     date, c.id)
        host.audit("registry.confirm", "child:" .. c.id)
        lines[#lines + 1] = ("confirmed %s (%s %s) on %s, status %s"):format(label(c), c.school, c.class,
                                                                           date, c.status)
      end
    end
  end)
  for _, e in ipairs(events) do host.emit(e[1], e[2]) end
  for _, l in ipairs(lines) do cmd.print(l) end
  if #children > 1 then cmd.print(("%d children confirmed"):format(#children)) end
  return 0
end

------------------------------------------------------------------ setup

local COMMANDS = {
  { "registry show", "registry show CHILD [--school S] [--class C]",
    "a child's archive and contact card (guardians, phones, proxy parents, visits, contacts)", show },
  { "registry find", "registry find TEXT [--school S] [--class C] [--all]",
    "children whose name, or whose guardian's name or phone, contains TEXT", find },
  { "registry log", "registry log letter|call|guardian-contact|talk CHILD [--date D] [--by PERSON] [--notes T]",
    "records a letter, a call, a contact with the guardian or a talk", log_contact },
  { "registry visit", "registry visit done CHILD [--date D] [--kind term_start|mid_term|term_end|ad_hoc]"
    .. " [--by PERSON] [--notes T]", "marks the child's next due home visit done", visit },
  { "registry pair", "registry pair CHILD PERSON [--since D]",
    "pairs a teacher or volunteer with a child as proxy parent (at most two)", pair },
  { "registry unpair", "registry unpair CHILD PERSON [--date D]",
    "ends a proxy-parent pairing", unpair },
  { "registry confirm", "registry confirm CHILD... [--all-class SCHOOL CLASS] [--status S] [--date D]",
    "confirms children's records for the term survey, optionally with a new status", confirm },
}

-- Exposed for the tests and the other registry modules.
M.find_child = find_child

function M.setup(host, _options)
  for _, c in ipairs(COMMANDS) do
    local name, usage, help, body = c[1], c[2], c[3], c[4]
    host.command(name, { usage = usage, help = help,
                         run = runner(usage, function(cmd) return body(host, cmd) end) })
  end
end

return M
