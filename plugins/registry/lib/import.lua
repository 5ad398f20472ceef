-- registry import: the county's CSV files into the registry. One row per
-- child with its contact card (the default), or schools, teachers and
-- volunteers, or pairings.
--
-- The whole import is one transaction, in three steps:
--   1. read: every row is checked (values, dates, phones, known schools)
--      and staged, canonical, in registry_stage with multi-row INSERTs; a
--      bad row is staged as its line and what is wrong with it;
--   2. check across rows (the same child twice, a third active pairing);
--      report every bad row in line order; refuse the file if any is bad
--      (unless --skip-bad), which rolls everything back;
--   3. merge the staged rows into the registry with set-based SQL, count
--      added / changed / unchanged, gather the registry events, audit;
-- and once the transaction has committed, emit the events.
-- Result rows of step 3 live in registry_stage too, at line - 2^40 (see
-- RES): the child (or school, person, pairing) a row matched, the fields
-- that changed, and what it replaced.
local args = require("lib.args")
local values = require("lib.values")

local M = {}

local RES = 1 << 40 -- result rows: line - RES
local BATCH = 100   -- rows per staging INSERT
-- Events per child up to this many children touched by one import; past
-- it (a county's first import) one registry.imported says so instead, and
-- subscribers look at the registry themselves: a million queued events
-- would hold the memory the streaming import saves.
local EVENTS_MAX = 5000
local USAGE = "registry import FILE [--kind children|schools|people|pairings] "
  .. "[--encoding auto|utf-8|gbk] [--skip-bad REJECTS.csv] [--dry-run]"

local byte, sub, concat, unpack = string.byte, string.sub, table.concat, table.unpack

-- ------------------------------------------------------------- values

-- Trims ASCII blanks and the ideographic space (U+3000) at both ends.
local function trim(s)
  local i, j = 1, #s
  while i <= j do
    local b = byte(s, i)
    if b == 32 or b == 9 or b == 10 or b == 13 then
      i = i + 1
    elseif b == 0xE3 and byte(s, i + 1) == 0x80 and byte(s, i + 2) == 0x80 then
      i = i + 3
    else
      break
    end
  end
  while j >= i do
    local b = byte(s, j)
    if b == 32 or b == 9 or b == 10 or b == 13 then
      j = j - 1
    elseif b == 0x80 and j - 2 >= i and byte(s, j - 1) == 0x80 and byte(s, j - 2) == 0xE3 then
      j = j - 3
    else
      break
    end
  end
  return sub(s, i, j)
end

-- Field i of a row, trimmed; nil when the column is absent or the cell
-- empty. The common case (nothing to trim) costs two byte reads.
local function cell(f, i)
  if not i then return nil end
  local s = f[i]
  if s == nil or s == "" then return nil end
  local a, z = byte(s, 1), byte(s, -1)
  if a == 32 or z == 32 or a == 9 or z == 9 or a == 0xE3 or z == 0x80 or z == 13 or z == 10 then
    s = trim(s)
    if s == "" then return nil end
  end
  return s
end

-- Returns tidy(f, n): trims the fields of a row in place (all but column
-- keep, the notes, kept as written) and makes empty ones nil. A look at
-- the joined row (plain searches, which cost little) tells whether any
-- field may need trimming at all.
local function tidier(keep)
  local find = string.find
  return function(f, n)
    local j = concat(f, "\31", 1, n)
    local trim_all = find(j, " ", 1, true) or find(j, "\t", 1, true) or find(j, "\n", 1, true)
      or find(j, "\r", 1, true) or find(j, "\227\128\128", 1, true)
    for i = 1, n do
      local s = f[i]
      if s == "" then
        f[i] = nil
      elseif trim_all then
        if i ~= keep then
          s = trim(s)
          f[i] = s ~= "" and s or nil
        elseif find(s, "\r", 1, true) then
          f[i] = s:gsub("\r\n?", "\n") -- line breaks in the registry are LF
        end
      end
    end
  end
end

local function looks_like_date(s)
  local groups = 0
  for _ in s:gmatch("%d+") do groups = groups + 1 end
  return groups >= 3 or s:find("^%d%d%d%d%d%d%d%d$") ~= nil
end

-- ------------------------------------------------------------- header

-- Code points of a UTF-8 string, for the near-miss suggestion.
local function chars(s)
  local t = {}
  for _, c in utf8.codes(s, true) do t[#t + 1] = c end
  return t
end

local function distance(a, b)
  a, b = chars(a), chars(b)
  local prev, cur = {}, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    cur[0] = i
    for j = 1, #b do
      local cost = a[i] == b[j] and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[#b]
end

-- A header as the code compares it: trimmed, without a BOM, without the
-- '*' forms put after required columns.
local function header_name(s)
  s = trim((s:gsub("^\239\187\191", "")))
  while true do
    if sub(s, -1) == "*" then
      s = trim(sub(s, 1, -2))
    elseif sub(s, -3) == "＊" then
      s = trim(sub(s, 1, -4))
    else
      return s
    end
  end
end

-- Whether a header is the 错误 column --skip-bad adds to its rejects.
local function is_error_column(h)
  return h == "错误" or h:lower() == "error"
end

-- Maps the header row to columns: ix[key] = field index, name[key] = the
-- header as written. Returns ix, name, ncols and the index of a last
-- column 错误 (a rejects file fixed and sent again: ignored), or nil and
-- the messages.
local function map_header(kind, fields)
  local cols = values.columns[kind]
  local by = {}
  for _, c in ipairs(cols) do
    by[c.zh] = c
    by[c.key] = c
  end
  for alias, key in pairs(values.header_aliases[kind] or {}) do
    for _, c in ipairs(cols) do
      if c.key == key then by[alias] = c end
    end
  end
  local ncols = #fields
  while ncols > 0 and header_name(fields[ncols]) == "" do ncols = ncols - 1 end
  local errcol
  if ncols > 1 and is_error_column(header_name(fields[ncols])) then
    errcol, ncols = ncols, ncols - 1
  end
  local ix, name, errs = {}, {}, {}
  for i = 1, ncols do
    local h = header_name(fields[i])
    local c = by[h] or by[h:lower():gsub("[ %-]", "_")]
    if h == "" then
      errs[#errs + 1] = ("column %d has no header"):format(i)
    elseif not c then
      local best, bd
      for _, k in ipairs(cols) do
        for _, cand in ipairs({ k.zh, k.key }) do
          local d = distance(h:lower(), cand)
          if not bd or d < bd then best, bd = cand, d end
        end
      end
      local limit = utf8.len(h) and utf8.len(h) <= 3 and 1 or 2
      if bd and bd <= limit then
        errs[#errs + 1] = ('unknown column "%s" (did you mean %s?)'):format(h, best)
      else
        local list = {}
        for _, k in ipairs(cols) do list[#list + 1] = k.zh end
        errs[#errs + 1] = ('unknown column "%s" (expected %s, or their English names)')
          :format(h, concat(list, ", "))
      end
    elseif ix[c.key] then
      errs[#errs + 1] = ("column %s given twice (columns %d and %d)"):format(h, ix[c.key], i)
    else
      ix[c.key], name[c.key] = i, h
    end
  end
  for _, c in ipairs(cols) do
    if c.required and not ix[c.key] then
      errs[#errs + 1] = ("missing column %s (%s)"):format(c.zh, c.key)
    end
  end
  if #errs > 0 then return nil, errs end
  for _, c in ipairs(cols) do name[c.key] = name[c.key] or c.zh end
  return ix, name, ncols, errcol
end

-- ---------------------------------------------------------- checkers
--
-- A checker reads one row (fields f) and writes its stage values into
-- out[base + 1 .. base + kind.width]; it returns nil, or the list of what
-- is wrong ("COLUMN: what (got ..., expected ...)").

local function problems(ctx)
  local host, name = ctx.host, ctx.name
  local errs
  local P = {}
  function P.reset() errs = nil end
  function P.result() return errs end
  function P.bad(key, msg)
    errs = errs or {}
    errs[#errs + 1] = name[key] .. ": " .. msg
  end
  function P.enum(key, e, s)
    if not s then return nil end
    local v = e.from[s] or e.from[s:lower()]
    if not v then P.bad(key, ('unknown value (got "%s", expected %s)'):format(s, e.expected)) end
    return v
  end
  function P.required(key, s)
    if not s then P.bad(key, "required") end
    return s
  end
  function P.date(key, s, month)
    if not s then return nil end
    local d = host.text.date(s, month and { month = true } or nil)
    if not d then
      local like = month and "a date like 2015-03-07 or a month like 2015-03" or "a date like 2015-03-07"
      P.bad(key, ('%s (got "%s", expected %s)'):format(looks_like_date(s) and "no such date" or "not a date",
        s, like))
    end
    return d
  end
  function P.phone(key, s)
    if not s then return nil end
    local p = host.phone.normalize(s)
    if not p then
      P.bad(key, ('not a mobile number (got "%s", expected 11 digits starting with 1)'):format(s))
    end
    return p
  end
  -- An unknown school's hint, worked out once a name, for the first 100
  -- names (a file of nonsense stays cheap).
  local near, nnear = {}, 0
  function P.school(key, s)
    if not s then return nil end
    local sc = ctx.schools[s]
    if not sc then
      if not near[s] and nnear >= 100 then
        return P.bad(key, ('unknown school (got "%s", expected a school in the registry)'):format(s))
      elseif not near[s] then
        nnear = nnear + 1
        local best, bd = nil, 3
        for known in pairs(ctx.schools) do
          local d = distance(s, known)
          if d < bd or (d == bd and best and known < best) then best, bd = known, d end
        end
        near[s] = best and ("did you mean " .. best .. "?") or "import the schools first"
      end
      P.bad(key, ('unknown school (got "%s", expected a school in the registry: %s)'):format(s, near[s]))
    end
    return sc
  end
  return P
end

local kinds = {}

-- Children: stage columns
--   c1 school_id, c2 name, c3 birth_date, c4 gender, c5 class, c6 village,
--   c7 away, c8 away_since, c9 status, c10 performance, c11 notes,
--   c12..c15 father ukey, name, phone, workplace, c16..c19 the mother's,
--   c20 guardian ukey (nil when the guardian is a parent), c21 name,
--   c22 phone, c23 relation.
kinds.children = { width = 23, dup = { "c1", "c2", "c3" }, dup_col = "name",
  dup_msg = "the same child as line %d (same school, name and birth date)" }

function kinds.children.checker(ctx)
  local ix, P, today = ctx.ix, ctx.P, ctx.today
  local V = values
  local bad, enum, date, phone = P.bad, P.enum, P.date, P.phone
  local text_date, normalize = ctx.host.text.date, ctx.host.phone.normalize
  local i_name, i_gender, i_birth, i_school, i_class = ix.name, ix.gender, ix.birth_date, ix.school, ix.class
  local i_village, i_away, i_since, i_status, i_perf = ix.village, ix.away, ix.away_since, ix.status, ix.performance
  local i_fn, i_fp, i_fw = ix.father_name, ix.father_phone, ix.father_workplace
  local i_mn, i_mp, i_mw = ix.mother_name, ix.mother_phone, ix.mother_workplace
  local i_gn, i_gr, i_gp, i_notes = ix.guardian_name, ix.guardian_relation, ix.guardian_phone, ix.notes
  local has_status = i_status ~= nil
  local hname, schools = ctx.name, ctx.schools
  local genders, aways, statuses, perfs, relations =
    V.gender.from, V.away.from, V.status.from, V.performance.from, V.relation.from
  local MONTH = { month = true }

  local function parent(who, n, p, w, school, cname, birth)
    if not n then
      if p or w then
        bad(who .. "_name", ("required when %s or %s is given"):format(hname[who .. "_phone"],
          hname[who .. "_workplace"]))
      end
      return nil
    end
    if p then return n .. "|" .. p end
    return n .. "|child:" .. (school and school.name or "") .. "|" .. (cname or "") .. "|" .. (birth or "")
  end

  -- The fields are trimmed already, empty ones nil (see tidy). Each value
  -- takes the quick way (a table lookup, one host call) and only a miss
  -- goes through P, which says what is wrong.
  return function(f, out, base)
    P.reset()
    local name = f[i_name]
    if not name then bad("name", "required") end
    local s = f[i_gender]
    local gender = genders[s]
    if not gender then
      if s then enum("gender", V.gender, s) else bad("gender", "required") end
    end
    s = f[i_birth]
    local birth = s and text_date(s)
    if not birth then
      if s then date("birth_date", s) else bad("birth_date", "required") end
    elseif birth > today then
      bad("birth_date", ('in the future (got "%s", expected a date before today)'):format(s))
    end
    s = f[i_school]
    local school = schools[s]
    if not school then
      if s then P.school("school", s) else bad("school", "required") end
    end
    local class = f[i_class]
    if not class then bad("class", "required") end
    s = f[i_away]
    local away = aways[s]
    if not away then
      if s then enum("away", V.away, s) else bad("away", "required") end
    end
    s = f[i_since]
    local since = s and (text_date(s, MONTH) or date("away_since", s, true))
    s = f[i_status]
    local status = s and (statuses[s] or enum("status", V.status, s))
    if not s and has_status then status = "active" end
    s = f[i_perf]
    local perf = s and (perfs[s] or enum("performance", V.performance, s))
    local fn, fw, mn, mw = f[i_fn], f[i_fw], f[i_mn], f[i_mw]
    s = f[i_fp]
    local fp = s and (normalize(s) or phone("father_phone", s))
    s = f[i_mp]
    local mp = s and (normalize(s) or phone("mother_phone", s))
    local gn = f[i_gn]
    if not gn then bad("guardian_name", "required") end
    s = f[i_gr]
    local grel = relations[s]
    if not grel then
      if s then grel = enum("guardian_relation", V.relation, s) else bad("guardian_relation", "required") end
    end
    s = f[i_gp]
    local gp = s and (normalize(s) or phone("guardian_phone", s))
    if not s then bad("guardian_phone", "required") end
    local notes = f[i_notes]
    -- A guardian who is the father or the mother is that parent.
    if grel == "father" or grel == "mother" then
      local pn, pp = mn, mp
      if grel == "father" then pn, pp = fn, fp end
      if pn and gn and pn ~= gn then
        bad("guardian_name", ('the guardian is the %s, whose name is given as "%s" (got "%s")')
          :format(grel, pn, gn))
      elseif pp and gp and pp ~= gp then
        bad("guardian_phone", ('the guardian is the %s, whose phone is given as "%s" (got "%s")')
          :format(grel, f[grel == "father" and i_fp or i_mp], f[i_gp]))
      end
      if grel == "father" then fn, fp = gn, gp else mn, mp = gn, gp end
    end
    local fkey = parent("father", fn, fp, fw, school, name, birth)
    local mkey = parent("mother", mn, mp, mw, school, name, birth)
    local gkey
    if grel and grel ~= "father" and grel ~= "mother" and gn and gp then
      gkey = gn .. "|" .. gp
      if gkey == fkey or gkey == mkey then
        bad("guardian_relation", ('the guardian has the %s\'s name and phone (got "%s", expected %s)')
          :format(gkey == fkey and "father" or "mother", f[i_gr], gkey == fkey and "父亲" or "母亲"))
      end
    end
    if fkey and fkey == mkey then
      bad("mother_name", ('the same name and phone as the father (got "%s")'):format(mn))
    end
    local errs = P.result()
    if errs then return errs end
    out[base + 1], out[base + 2], out[base + 3], out[base + 4] = school.id, name, birth, gender
    out[base + 5], out[base + 6], out[base + 7], out[base + 8] = class, f[i_village], away, since
    out[base + 9], out[base + 10], out[base + 11] = status, perf, notes
    out[base + 12], out[base + 13], out[base + 14], out[base + 15] = fkey, fn, fp, fkey and fw
    out[base + 16], out[base + 17], out[base + 18], out[base + 19] = mkey, mn, mp, mkey and mw
    out[base + 20], out[base + 21], out[base + 22], out[base + 23] = gkey, gn, gp, grel
    return nil
  end
end

-- Schools: c1 name, c2 town, c3 enrolment.
kinds.schools = { width = 3, dup = { "c1" }, dup_col = "name", dup_msg = "the same school as line %d" }

function kinds.schools.checker(ctx)
  local ix, P = ctx.ix, ctx.P
  local i_name, i_town, i_enr = ix.name, ix.town, ix.enrolment
  return function(f, out, base)
    P.reset()
    local name = P.required("name", cell(f, i_name))
    local enr = P.required("enrolment", cell(f, i_enr))
    local n
    if enr then
      n = enr:find("^%d+$") and math.tointeger(tonumber(enr))
      if not n then
        P.bad("enrolment", ('not a whole number (got "%s", expected a number of students like 1200)'):format(enr))
      end
    end
    local errs = P.result()
    if errs then return errs end
    out[base + 1], out[base + 2], out[base + 3] = name, cell(f, i_town), n
    return nil
  end
end

-- People (teachers, volunteers): c1 ukey, c2 kind, c3 name, c4 phone,
-- c5 school_id, c6 class, c7 role.
kinds.people = { width = 7, dup = { "c1" }, dup_col = "name",
  dup_msg = "the same person as line %d (same name and phone)" }

function kinds.people.checker(ctx)
  local ix, P = ctx.ix, ctx.P
  local i_name, i_kind, i_phone, i_school, i_class, i_role = ix.name, ix.kind, ix.phone, ix.school, ix.class, ix.role
  return function(f, out, base)
    P.reset()
    local name = P.required("name", cell(f, i_name))
    local kind = P.enum("kind", values.person_kind, P.required("kind", cell(f, i_kind)))
    local phone = P.phone("phone", P.required("phone", cell(f, i_phone)))
    local school = P.school("school", cell(f, i_school))
    local class, role = cell(f, i_class), P.enum("role", values.role, cell(f, i_role))
    if kind == "teacher" then
      if not cell(f, i_school) then P.bad("school", "required for a teacher") end
      role = role or "teacher"
    elseif kind == "volunteer" then
      if class then P.bad("class", ('only for teachers (got "%s", expected nothing for a volunteer)'):format(class)) end
      if role then
        P.bad("role", ('only for teachers (got "%s", expected nothing for a volunteer)'):format(cell(f, i_role)))
      end
    end
    local errs = P.result()
    if errs then return errs end
    out[base + 1], out[base + 2], out[base + 3], out[base + 4] = name .. "|" .. phone, kind, name, phone
    out[base + 5], out[base + 6], out[base + 7] = school and school.id, class, role
    return nil
  end
end

-- Pairings: c1 child_id, c2 person_id, c3 since, c4 until, c5 the pairing
-- it matches (child, person, since), c6 1 when that one is active, c7 its
-- end date.
kinds.pairings = { width = 7, dup = { "c1", "c2", "c3" }, dup_col = "person",
  dup_msg = "the same pairing as line %d (same child, person and start date)" }

function kinds.pairings.checker(ctx)
  local ix, P, host = ctx.ix, ctx.P, ctx.host
  local i_child, i_school, i_birth = ix.child, ix.school, ix.birth_date
  local i_person, i_phone, i_since, i_until = ix.person, ix.person_phone, ix.since, ix["until"]
  local one = host.db.one
  return function(f, out, base)
    P.reset()
    local cname = P.required("child", cell(f, i_child))
    local school = P.school("school", P.required("school", cell(f, i_school)))
    local birth = P.date("birth_date", P.required("birth_date", cell(f, i_birth)))
    local pname = P.required("person", cell(f, i_person))
    local phone = P.phone("person_phone", P.required("person_phone", cell(f, i_phone)))
    local since = P.date("since", P.required("since", cell(f, i_since)))
    local till = P.date("until", cell(f, i_until))
    if since and till and till < since then
      P.bad("until", ('before the start date (got "%s", expected %s or later)'):format(cell(f, i_until), since))
    end
    local child, person, match, active
    if cname and school and birth then
      child = one("SELECT id FROM children WHERE school_id = ? AND name = ? AND birth_date = ?",
        school.id, cname, birth)
      if not child then
        P.bad("child", ('no such child (got "%s" of %s born %s, expected a child in the registry: '
          .. 'import the children first)'):format(cname, school.name, birth))
      end
    end
    if pname and phone then
      person = one("SELECT id, kind FROM people WHERE ukey = ?", pname .. "|" .. phone)
      if not person or (person.kind ~= "teacher" and person.kind ~= "volunteer") then
        P.bad("person", ('no such teacher or volunteer (got "%s" with phone %s, expected one in the registry: '
          .. 'import the people first)'):format(pname, cell(f, i_phone)))
        person = nil
      end
    end
    if child and person and since then
      match = one('SELECT id, "until" FROM pairings WHERE child_id = ? AND person_id = ? AND since = ?',
        child.id, person.id, since)
      -- A file without 结束日期 says nothing of ends: a pairing ended by
      -- registry unpair stays ended (and counts as such below).
      if not i_until and match then till = match["until"] end
      if not till then
        local open = one('SELECT since FROM pairings WHERE child_id = ? AND person_id = ? AND "until" IS NULL',
          child.id, person.id)
        if open and open.since ~= since then
          P.bad("since", ('already paired with this child since %s (got "%s", expected %s, or end that '
            .. 'pairing first)'):format(open.since, cell(f, i_since), open.since))
        end
      end
      active = match and not match["until"] and 1 or 0
    end
    local errs = P.result()
    if errs then return errs end
    out[base + 1], out[base + 2], out[base + 3], out[base + 4] = child.id, person.id, since, till
    out[base + 5], out[base + 6], out[base + 7] = match and match.id, active, match and match["until"]
    return nil
  end
end

-- ------------------------------------------------------------- staging

local function col_list(width)
  local t = { "line" }
  for i = 1, width do t[#t + 1] = "c" .. i end
  return concat(t, ", ")
end

-- The multi-row INSERT for k rows of a kind, built once per size.
local function stage_sql(kind, k)
  kind.sql = kind.sql or {}
  local s = kind.sql[k]
  if s then return s end
  local one = "(?" .. string.rep(", ?", kind.width) .. ")"
  local rows = {}
  for i = 1, k do rows[i] = one end
  s = "INSERT INTO registry_stage(" .. col_list(kind.width) .. ") VALUES " .. concat(rows, ", ")
  kind.sql[k] = s
  return s
end

-- Cross-row checks: a row whose identity an earlier row has.
local function check_duplicates(host, kind, name)
  local d = concat(kind.dup, ", ")
  local sql = "SELECT line, first FROM (SELECT line, min(line) OVER (PARTITION BY " .. d
    .. ") AS first FROM registry_stage WHERE line > 0 AND err IS NULL) WHERE line <> first ORDER BY line"
  local dups = {}
  for row in host.db.rows(sql) do dups[#dups + 1] = row end
  local col = name[kind.dup_col]
  for _, row in ipairs(dups) do
    host.db.exec("UPDATE registry_stage SET err = ? WHERE line = ?",
      col .. ": " .. kind.dup_msg:format(row.first), row.line)
  end
  return #dups
end

-- Pairings: two active rows for one child and person, and a child's
-- third active pairing, counting those of the registry the file does not
-- mention.
local function check_pairings(host, name)
  local n = 0
  local marks = {}
  local sql = [[SELECT line, first FROM (SELECT line, min(line) OVER (PARTITION BY c1, c2) AS first
      FROM registry_stage WHERE line > 0 AND err IS NULL AND c4 IS NULL) WHERE line <> first ORDER BY line]]
  for row in host.db.rows(sql) do
    marks[#marks + 1] = { row.line, name.person .. ": "
      .. ("already paired with this child in line %d"):format(row.first) }
  end
  for _, m in ipairs(marks) do
    host.db.exec("UPDATE registry_stage SET err = ? WHERE line = ?", m[2], m[1])
  end
  n = n + #marks
  marks = {}
  sql = [[SELECT line, old, k FROM (
      SELECT line, c4,
        (SELECT count(*) FROM pairings p WHERE p.child_id = s.c1 AND p."until" IS NULL)
          - sum(c6) OVER (PARTITION BY c1) AS old,
        sum(c4 IS NULL) OVER (PARTITION BY c1 ORDER BY line ROWS UNBOUNDED PRECEDING) AS k
      FROM registry_stage s WHERE line > 0 AND err IS NULL)
    WHERE c4 IS NULL AND old + k > 2 ORDER BY line]]
  for row in host.db.rows(sql) do
    marks[#marks + 1] = { row.line, name.person .. ": " .. (
      "a third active pairing (the child has %d active in the registry and %d earlier in this file, "
      .. "expected at most 2: give one an end date)"):format(row.old, row.k - 1) }
  end
  for _, m in ipairs(marks) do
    host.db.exec("UPDATE registry_stage SET err = ? WHERE line = ?", m[2], m[1])
  end
  return n + #marks
end

-- ------------------------------------------------------------- merging

local J = " FROM registry_stage r JOIN registry_stage s ON s.line = r.line + " .. RES .. " WHERE r.line < 0"

local CHILD_FIELDS = {
  { "gender", "c4" }, { "class", "c5" }, { "village", "c6", true }, { "away", "c7" },
  { "away_since", "c8", true }, { "status", "c9", true }, { "performance", "c10", true },
  { "notes", "c11", true },
}
local CARD = {
  { "father_name", "pf.name", "s.c13" }, { "father_phone", "pf.phone", "s.c14" },
  { "father_workplace", "gf.workplace", "s.c15" },
  { "mother_name", "pm.name", "s.c17" }, { "mother_phone", "pm.phone", "s.c18" },
  { "mother_workplace", "gm.workplace", "s.c19" },
  { "guardian_name", "pg.name", "s.c21" }, { "guardian_relation", "gg.relation", "s.c23" },
  { "guardian_phone", "pg.phone", "s.c22" },
}

-- The CASE chain naming the fields that differ: ",class,notes".
local function changed_expr(pairs_)
  local t = {}
  for _, p in ipairs(pairs_) do
    t[#t + 1] = ("CASE WHEN %s IS NOT %s THEN ',%s' ELSE '' END"):format(p[2], p[3], p[1])
  end
  return concat(t, " || ")
end

local merge = {}

-- The parents on a card, in the stage: the person's ukey, name, phone and
-- workplace, and the other people of the card (one person is on a card
-- once).
local PARENTS = {
  { who = "father", ukey = "c12", name = "c13", phone = "c14", work = "c15", others = { "c16", "c20" } },
  { who = "mother", ukey = "c16", name = "c17", phone = "c18", work = "c19", others = { "c12", "c20" } },
}

-- A parent's columns the file leaves out keep what the card has, as the
-- child's optional columns do: the staged rows take the registry's values,
-- so that they compare equal and the card is put back as it was when
-- something else on it changed. Without the name column the parent is
-- kept whole (unless the guardian is that parent: the guardian's columns
-- name them); without the phone, the parent of that name keeps their
-- phone; without the workplace, the same parent keeps theirs. A column
-- there but empty still means no such parent on the card.
local function keep_left_out(ctx)
  local ix, exec = ctx.ix, ctx.host.db.exec
  local S = "registry_stage."
  for _, g in ipairs(PARENTS) do
    local from = " FROM children c JOIN guardianships l ON l.child_id = c.id AND l.relation = '" .. g.who
      .. "' JOIN people p ON p.id = l.person_id WHERE c.school_id = " .. S .. "c1 AND c.name = " .. S
      .. "c2 AND c.birth_date = " .. S .. "c3"
    local apart = " AND p.ukey IS NOT " .. S .. g.others[1] .. " AND p.ukey IS NOT " .. S .. g.others[2]
    local rows = " WHERE line > 0 AND err IS NULL"
    if not ix[g.who .. "_name"] then
      exec("UPDATE registry_stage SET (" .. g.ukey .. ", " .. g.name .. ", " .. g.phone .. ", " .. g.work
        .. ") = (SELECT p.ukey, p.name, p.phone, l.workplace" .. from .. apart .. ")"
        .. rows .. " AND c23 IS NOT '" .. g.who .. "'")
    elseif not ix[g.who .. "_phone"] then
      exec("UPDATE registry_stage SET (" .. g.ukey .. ", " .. g.phone .. ") = (SELECT coalesce(max(p.ukey), "
        .. S .. g.ukey .. "), max(p.phone)" .. from
        .. " AND p.name = " .. S .. g.name .. apart .. ")" .. rows .. " AND " .. g.name .. " IS NOT NULL AND "
        .. g.phone .. " IS NULL")
    end
    if not ix[g.who .. "_workplace"] then
      exec("UPDATE registry_stage SET " .. g.work .. " = (SELECT l.workplace" .. from .. " AND p.ukey = " .. S
        .. g.ukey .. ")" .. rows .. " AND " .. g.ukey .. " IS NOT NULL AND " .. g.work .. " IS NULL")
    end
  end
end

function merge.children(ctx)
  local host, ix, now = ctx.host, ctx.ix, ctx.host.now()
  local db = host.db
  keep_left_out(ctx)
  local cmp, set = {}, {}
  for _, f in ipairs(CHILD_FIELDS) do
    if not f[3] or ix[f[1]] then
      cmp[#cmp + 1] = { f[1], "c." .. f[1], "s." .. f[2] }
      set[#set + 1] = f[1] .. " = s." .. f[2]
    end
  end
  for _, f in ipairs(CARD) do cmp[#cmp + 1] = f end
  local steps, step = 9, 0
  local function progress()
    step = step + 1
    ctx.cmd.progress(step, steps, "merging")
    ctx.lap("merge " .. step)
  end
  -- Which rows are new, which changed (and what they replace).
  db.exec([[INSERT INTO registry_stage(line, id, note, c1, c2, c3, c4)
    SELECT line - ]] .. RES .. [[, cid, substr(ch, 2), ost, pf, pm, pg FROM (
      SELECT s.line, c.id AS cid, c.status AS ost, gf.person_id AS pf, gm.person_id AS pm,
        gg.person_id AS pg, CASE WHEN c.id IS NULL THEN NULL ELSE ]] .. changed_expr(cmp) .. [[ END AS ch
      FROM registry_stage s
      LEFT JOIN children c ON c.school_id = s.c1 AND c.name = s.c2 AND c.birth_date = s.c3
      LEFT JOIN guardianships gf ON gf.child_id = c.id AND gf.relation = 'father'
      LEFT JOIN people pf ON pf.id = gf.person_id
      LEFT JOIN guardianships gm ON gm.child_id = c.id AND gm.relation = 'mother'
      LEFT JOIN people pm ON pm.id = gm.person_id
      LEFT JOIN guardianships gg ON gg.child_id = c.id AND gg.is_primary = 1
      LEFT JOIN people pg ON pg.id = gg.person_id
      WHERE s.line > 0 AND s.err IS NULL)
    WHERE cid IS NULL OR ch <> '' ORDER BY line]])
  progress()
  -- The people on the cards of new and changed children.
  -- (a child's three people one after the other: their ids then follow
  -- the children's, and so do the links' index entries; measured faster
  -- than writing them in ukey order, which scatters the links)
  db.exec("INSERT INTO people(ukey, kind, name, phone) SELECT ukey, kind, name, phone FROM ("
    .. " SELECT CASE k.n WHEN 1 THEN s.c12 WHEN 2 THEN s.c16 ELSE s.c20 END AS ukey,"
    .. " CASE k.n WHEN 3 THEN 'guardian' ELSE 'parent' END AS kind,"
    .. " CASE k.n WHEN 1 THEN s.c13 WHEN 2 THEN s.c17 ELSE s.c21 END AS name,"
    .. " CASE k.n WHEN 1 THEN s.c14 WHEN 2 THEN s.c18 ELSE s.c22 END AS phone"
    .. " FROM registry_stage r JOIN registry_stage s ON s.line = r.line + " .. RES
    .. " CROSS JOIN (SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3) AS k WHERE r.line < 0)"
    .. " WHERE ukey IS NOT NULL ON CONFLICT(ukey) DO UPDATE SET kind = 'parent'"
    .. " WHERE kind = 'guardian' AND excluded.kind = 'parent'")
  progress()
  local before = db.one("SELECT coalesce(max(id), 0) AS n FROM children").n
  local added = db.exec([[INSERT INTO children(name, gender, birth_date, school_id, class, village, away,
      away_since, status, performance, notes, changed_at)
    SELECT s.c2, s.c4, s.c3, s.c1, s.c5, s.c6, s.c7, s.c8, coalesce(s.c9, 'active'), s.c10, s.c11, ?]]
    .. J .. " AND r.id IS NULL ORDER BY s.c1, s.c2, s.c3", now) -- the unique index's order
  progress()
  db.exec("UPDATE registry_stage SET id = (SELECT c.id FROM registry_stage s JOIN children c"
    .. " ON c.school_id = s.c1 AND c.name = s.c2 AND c.birth_date = s.c3 WHERE s.line = registry_stage.line + "
    .. RES .. ") WHERE line < 0 AND id IS NULL")
  progress()
  local changed = db.exec("UPDATE children SET " .. concat(set, ", ") .. ", changed_at = ?" .. J
    .. " AND r.note IS NOT NULL AND children.id = r.id", now)
  -- A file a school sends in is its check of every child in it: the term
  -- survey's confirmation (registry confirm does the same for one child).
  local d = host.date(now)
  db.exec([[UPDATE children SET confirmed_on = :today WHERE (confirmed_on IS NULL OR confirmed_on < :today)
      AND id IN (SELECT c.id FROM registry_stage s JOIN children c
                   ON c.school_id = s.c1 AND c.name = s.c2 AND c.birth_date = s.c3
                 WHERE s.line > 0 AND s.err IS NULL)]],
    { today = ("%04d-%02d-%02d"):format(d.year, d.month, d.day) })
  progress()
  db.exec("DELETE FROM guardianships WHERE child_id IN (SELECT id FROM registry_stage"
    .. " WHERE line < 0 AND note IS NOT NULL)")
  progress()
  -- The links, a child's three at a time.
  db.exec("INSERT INTO guardianships(child_id, person_id, relation, is_primary, workplace)"
    .. " SELECT x.cid, p.id, x.rel, x.prim, x.work FROM ("
    .. " SELECT r.id AS cid, CASE k.n WHEN 1 THEN s.c12 WHEN 2 THEN s.c16 ELSE s.c20 END AS ukey,"
    .. " CASE k.n WHEN 1 THEN 'father' WHEN 2 THEN 'mother' ELSE s.c23 END AS rel,"
    .. " CASE k.n WHEN 1 THEN s.c23 = 'father' WHEN 2 THEN s.c23 = 'mother' ELSE 1 END AS prim,"
    .. " CASE k.n WHEN 1 THEN s.c15 WHEN 2 THEN s.c19 END AS work"
    .. " FROM registry_stage r JOIN registry_stage s ON s.line = r.line + " .. RES
    .. " CROSS JOIN (SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3) AS k WHERE r.line < 0) AS x"
    .. " JOIN people p ON p.ukey = x.ukey")
  progress()
  -- People no longer on any card, and nowhere else, go.
  if changed > 0 then
    pcall(db.exec, [[DELETE FROM people WHERE kind IN ('parent', 'guardian') AND id IN (
        SELECT c2 FROM registry_stage WHERE line < 0 AND note IS NOT NULL
        UNION SELECT c3 FROM registry_stage WHERE line < 0 AND note IS NOT NULL
        UNION SELECT c4 FROM registry_stage WHERE line < 0 AND note IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM guardianships g WHERE g.person_id = people.id)
      AND NOT EXISTS (SELECT 1 FROM pairings p WHERE p.person_id = people.id)
      AND id NOT IN (SELECT visitor_id FROM visits WHERE visitor_id IS NOT NULL)
      AND id NOT IN (SELECT by_id FROM contact_log WHERE by_id IS NOT NULL)]])
  end
  progress()
  local left = 0
  if changed > 0 then
    left = db.one("SELECT count(*) AS n" .. J .. " AND r.note IS NOT NULL AND r.c1 = 'active'"
      .. " AND (SELECT status FROM children WHERE id = r.id) <> 'active'").n
  end
  ctx.counts = { added = added, changed = changed, left = left }
  -- The events, handed to emit(topic, data) (run emits them once the
  -- transaction has committed).
  ctx.events = function(emit)
    for row in db.rows("SELECT r.id, r.note, r.c1 AS old, c.school_id, c.class, c.status FROM registry_stage r"
        .. " JOIN children c ON c.id = r.id WHERE r.line < 0 AND r.note IS NOT NULL ORDER BY r.line") do
      local fields = {}
      for w in row.note:gmatch("[^,]+") do fields[#fields + 1] = w end
      emit("registry.child_changed", { child = row.id, school = row.school_id, class = row.class, fields = fields })
      if row.old == "active" and row.status ~= "active" then
        emit("registry.child_left", { child = row.id, school = row.school_id, class = row.class,
          status = row.status, old_status = row.old })
      end
    end
    for row in db.rows("SELECT id, school_id, class FROM children WHERE id > ? ORDER BY id", before) do
      emit("registry.child_added", { child = row.id, school = row.school_id, class = row.class })
    end
  end
end

-- The smaller kinds: new rows are inserted, changed ones updated, in SQL
-- built from the columns they compare.
local function merge_simple(ctx, spec)
  local db, ix = ctx.host.db, ctx.ix
  local cmp, set = {}, {}
  for _, f in ipairs(spec.fields) do
    if not f.optional or ix[f.key] then
      cmp[#cmp + 1] = { f.key, "t." .. f.col, f.expr or ("s." .. f.stage) }
      set[#set + 1] = f.col .. " = " .. (f.expr or ("s." .. f.stage))
    end
  end
  -- (a file with none of the optional columns compares nothing: a row is
  -- new or unchanged)
  local ch = #cmp > 0 and changed_expr(cmp) or "''"
  db.exec("INSERT INTO registry_stage(line, id, note) SELECT line - " .. RES .. ", tid, substr(ch, 2) FROM ("
    .. "SELECT s.line, t.id AS tid, CASE WHEN t.id IS NULL THEN NULL ELSE " .. ch .. " END AS ch"
    .. " FROM registry_stage s LEFT JOIN " .. spec.table .. " t ON " .. spec.match
    .. " WHERE s.line > 0 AND s.err IS NULL) WHERE tid IS NULL OR ch <> '' ORDER BY line")
  ctx.cmd.progress(1, 3, "merging")
  local changed = 0
  for _, pass in ipairs(#set > 0 and (spec.update_passes or { "" }) or {}) do
    changed = changed + db.exec("UPDATE " .. spec.table .. " SET " .. concat(set, ", ")
      .. J .. " AND r.id IS NOT NULL AND " .. spec.table .. ".id = r.id" .. pass)
  end
  ctx.cmd.progress(2, 3, "merging")
  local added = db.exec("INSERT INTO " .. spec.table .. "(" .. spec.insert_cols .. ") SELECT " .. spec.insert_vals
    .. J .. " AND r.id IS NULL ORDER BY r.line")
  ctx.cmd.progress(3, 3, "merging")
  ctx.counts = { added = added, changed = changed, left = 0 }
end

function merge.schools(ctx)
  merge_simple(ctx, {
    table = "schools", match = "t.name = s.c1",
    fields = { { key = "town", col = "town", stage = "c2", optional = true },
      { key = "enrolment", col = "enrolment", stage = "c3" } },
    insert_cols = "name, town, enrolment", insert_vals = "s.c1, s.c2, s.c3",
  })
end

function merge.people(ctx)
  merge_simple(ctx, {
    table = "people", match = "t.ukey = s.c1",
    fields = { { key = "kind", col = "kind", stage = "c2" },
      { key = "school", col = "school_id", stage = "c5", optional = true },
      { key = "class", col = "class", stage = "c6", optional = true,
        expr = "CASE WHEN s.c2 = 'teacher' THEN s.c6 END" },
      { key = "role", col = "role", stage = "c7", optional = true,
        expr = "CASE WHEN s.c2 = 'teacher' THEN s.c7 END" } },
    insert_cols = "ukey, kind, name, phone, school_id, class, role",
    insert_vals = "s.c1, s.c2, s.c3, s.c4, s.c5, s.c6, s.c7",
  })
  -- A volunteer keeps no class or role, whatever the file left out.
  ctx.host.db.exec("UPDATE people SET class = NULL, role = NULL WHERE kind = 'volunteer'"
    .. " AND (class IS NOT NULL OR role IS NOT NULL) AND id IN (SELECT id FROM registry_stage WHERE line < 0)")
end

function merge.pairings(ctx)
  merge_simple(ctx, {
    table = "pairings", match = "t.id = s.c5",
    fields = { { key = "until", col = '"until"', stage = "c4", optional = true } },
    -- Ends first, so that the two-at-a-time rule holds at every step.
    update_passes = { " AND s.c4 IS NOT NULL", " AND s.c4 IS NULL" },
    insert_cols = 'child_id, person_id, since, "until"', insert_vals = "s.c1, s.c2, s.c3, s.c4",
  })
end

-- How many of the registry's rows of this kind the file left out: for
-- children, those of the schools the file names.
local function not_in_file(ctx)
  local db = ctx.host.db
  if ctx.kind_name == "children" then
    local n = 0
    for id in pairs(ctx.school_ids) do
      n = n + db.one("SELECT count(*) AS n FROM children WHERE school_id = ?", id).n
    end
    return n - ctx.good
  elseif ctx.kind_name == "schools" then
    return db.one("SELECT count(*) AS n FROM schools").n - ctx.good
  elseif ctx.kind_name == "people" then
    return db.one("SELECT count(*) AS n FROM people WHERE kind IN ('teacher', 'volunteer')").n - ctx.good
  end
  return db.one([[SELECT count(*) AS n FROM pairings WHERE "until" IS NULL]]).n
    - db.one([[SELECT count(*) AS n FROM registry_stage WHERE line > 0 AND err IS NULL AND c4 IS NULL]]).n
end

-- ------------------------------------------------------------- the command

-- A path as written, tidied for comparing two names of one file: "./"
-- steps and doubled slashes go ("./p2.csv" is "p2.csv", "a//b" "a/b").
-- Without the file system a link or an absolute path escapes it.
local function tidy_path(p)
  p = p:gsub("/+", "/")
  repeat
    local n
    p, n = p:gsub("/%./", "/")
  until n == 0
  while p:sub(1, 2) == "./" do p = p:sub(3) end
  if #p > 1 then p = p:gsub("/%.?$", "") end
  return p
end

local function same_path(a, b)
  return tidy_path(a) == tidy_path(b)
end

-- The command line, read by cmd.options (an option's value is never
-- another option: --skip-bad --dry-run would write the rejects to a file
-- named --dry-run), then checked.
local function parse_args(cmd)
  local opts, files = cmd.options({ kind = "value", encoding = "value", ["skip-bad"] = "value", ["dry-run"] = "flag" })
  if not opts then error({ usage = files }) end
  if opts.help then return { help = true } end
  local o = { kind = opts.kind or "children", encoding = opts.encoding or "auto", skip = opts["skip-bad"],
              dry = opts["dry-run"], file = files[1] }
  if #files > 1 then error({ usage = "one FILE only (got " .. files[1] .. " and " .. files[2] .. ")" }) end
  if not o.file then error({ usage = "FILE missing" }) end
  if o.skip and same_path(o.skip, o.file) then
    error({ usage = "--skip-bad: the rejects need a file of their own (not the input " .. o.file .. ")" })
  end
  if not kinds[o.kind] then error({ usage = "--kind: expected children, schools, people or pairings" }) end
  if o.encoding ~= "auto" and o.encoding ~= "utf-8" and o.encoding ~= "gbk" and o.encoding ~= "gb18030" then
    error({ usage = "--encoding: expected auto, utf-8 or gbk" })
  end
  return o
end

local function summary(ctx, o)
  local c, k = ctx.counts, ctx.kind_name
  local unchanged = ctx.good - c.added - c.changed
  local s = ("%s: %d rows: %d added, %d changed"):format(k, ctx.rows, c.added, c.changed)
  if k == "children" and c.left > 0 then
    s = s .. (" (%d of them left: status no longer active)"):format(c.left)
  end
  s = s .. (", %d unchanged"):format(unchanged)
  if ctx.bad > 0 then
    s = s .. (o.dry and ", %d bad (would be skipped)" or ", %d bad (skipped, written to %s)"):format(ctx.bad, o.skip)
  end
  local rest = ctx.not_in_file
  if k == "children" then
    s = s .. ("; %d in the registry not in this file (same schools; left as they are)"):format(rest)
  elseif k == "pairings" then
    s = s .. ("; %d active pairings in the registry not in this file (left as they are)"):format(rest)
  else
    s = s .. ("; %d in the registry not in this file (left as they are)"):format(rest)
  end
  if o.dry then s = "dry run: " .. s .. "; nothing changed" end
  return s
end

-- Writes the rejects: the header and the bad rows as they were, with
-- what is wrong in a last column, reading the file a second time.
local function write_rejects(ctx, o, header)
  local cmd, host = ctx.cmd, ctx.host
  local enc = ctx.encoding
  local w = assert(cmd.create(o.skip, { encoding = "utf-8", bom = enc ~= "utf-8" }))
  local h = {}
  for i = 1, ctx.ncols do h[i] = header[i] or "" end
  h[#h + 1] = "错误"
  w:row(h)
  local r = assert(cmd.csv(o.file, { encoding = o.encoding }))
  r:next() -- the header
  local f, line = r:next()
  for row in host.db.rows("SELECT line, err FROM registry_stage WHERE line > 0 AND err IS NOT NULL ORDER BY line") do
    while f and line < row.line do f, line = r:next() end
    if f and line == row.line then
      if ctx.errcol and #f >= ctx.errcol then table.remove(f, ctx.errcol) end
      local out = {}
      for i = 1, math.max(ctx.ncols, #f) do out[i] = f[i] or "" end
      while #out > ctx.ncols and out[#out] == "" do out[#out] = nil end
      for i = #out + 1, ctx.ncols do out[i] = "" end
      out[#out + 1] = (row.err:gsub("\n", "; "))
      w:row(out)
    end
  end
  r:close()
  w:close()
end

local function run(host, cmd)
  local o, status = args.read(cmd, "registry import", USAGE, parse_args)
  if not o then return status end
  local file = o.file
  local r, rerr = cmd.csv(file, { encoding = o.encoding })
  if not r then
    cmd.err(file .. ": " .. tostring(rerr))
    return 1
  end
  local header, hline, hmsg = r:next()
  if not header then
    r:close()
    cmd.err(hline and ("%s:%d: %s"):format(file, hline, hmsg) or (file .. ": empty file (expected a header row)"))
    return 1
  end
  header[1] = header[1] and header[1]:gsub("^\239\187\191", "")
  local kind = kinds[o.kind]
  local ix, name, ncols, errcol = map_header(o.kind, header)
  if not ix then
    r:close()
    for _, e in ipairs(name) do cmd.err(("%s:%d: %s"):format(file, hline, e)) end
    return 1
  end
  local today = host.date()
  local ctx = {
    host = host, cmd = cmd, kind_name = o.kind, ix = ix, name = name, ncols = ncols, errcol = errcol,
    today = ("%04d-%02d-%02d"):format(today.year, today.month, today.day),
    encoding = r.encoding, rows = 0, bad = 0, good = 0, school_ids = {},
  }
  ctx.P = problems(ctx)
  -- How long each step took, in the debug log.
  local t0, laps = host.now_ms(), {}
  function ctx.lap(what)
    local t = host.now_ms()
    laps[#laps + 1] = ("%s=%dms"):format(what, t - t0)
    t0 = t
  end
  local outcome -- "refused", "dry" or nil
  local events = {} -- { topic, data }, emitted after the commit
  local ok2, err = pcall(host.db.tx, function()
    local db = host.db
    db.exec("DELETE FROM registry_stage")
    ctx.schools = {}
    for s in db.rows("SELECT id, name FROM schools") do ctx.schools[s.name] = s end
    local check = kind.checker(ctx)
    local tidy = tidier(ix.notes)
    local width = kind.width
    local per = width + 1
    local buf, k = {}, 0
    local function flush()
      if k > 0 then
        db.exec(stage_sql(kind, k), unpack(buf, 1, k * per))
        k = 0
      end
    end
    local size = r:size()
    local school_ids = ctx.school_ids
    local per_school = o.kind == "children"
    local rows, bad = 0, 0
    while true do
      local f, line, msg = r:next()
      if not f then
        if line then
          cmd.progress()
          cmd.err(("%s:%d: %s"):format(file, line, msg))
          cmd.err("the file cannot be read past this error; nothing imported")
          outcome = "refused"
          error("refused")
        end
        break
      end
      rows = rows + 1
      -- what a rejects file said was wrong: not data
      if errcol and #f >= errcol then table.remove(f, errcol) end
      local base = k * per
      local errs
      if #f > ncols then
        for i = ncols + 1, #f do
          if f[i] ~= "" then
            errs = { ("%d fields, but the header has %d columns (a comma in a value that is not quoted?)")
              :format(#f, ncols) }
            break
          end
        end
      end
      if not errs then tidy(f, #f) end
      errs = errs or check(f, buf, base + 1)
      if errs then
        bad = bad + 1
        db.exec("INSERT INTO registry_stage(line, err) VALUES (?, ?)", line, concat(errs, "\n"))
      else
        buf[base + 1] = line
        if per_school then school_ids[buf[base + 2]] = true end
        k = k + 1
        if k == BATCH then flush() end
      end
      if rows & 4095 == 0 then cmd.progress(r:pos(), size, "reading " .. file) end
    end
    flush()
    r:close()
    cmd.progress()
    ctx.lap("read")
    ctx.rows = rows
    bad = bad + check_duplicates(host, kind, name)
    if o.kind == "pairings" then bad = bad + check_pairings(host, name) end
    ctx.bad, ctx.good = bad, rows - bad
    ctx.lap("check")
    for row in db.rows("SELECT line, err FROM registry_stage WHERE line > 0 AND err IS NOT NULL ORDER BY line") do
      for e in row.err:gmatch("[^\n]+") do cmd.err(("%s:%d: %s"):format(file, row.line, e)) end
    end
    if bad > 0 and not o.skip then
      cmd.err(("%d bad row%s; nothing imported"):format(bad, bad == 1 and "" or "s"))
      outcome = "refused"
      error("refused")
    end
    merge[o.kind](ctx)
    ctx.not_in_file = not_in_file(ctx)
    cmd.progress()
    if o.dry then
      outcome = "dry"
      error("dry run")
    end
    if bad > 0 then write_rejects(ctx, o, header) end
    -- The events wait for the commit: the bus keeps what is emitted even
    -- when the transaction then rolls back, and subscribers would hear of
    -- changes that never happened.
    local each = ctx.counts.added + ctx.counts.changed <= EVENTS_MAX
    if ctx.events and each then
      ctx.events(function(topic, data) events[#events + 1] = { topic, data } end)
    end
    events[#events + 1] = { "registry.imported", { kind = o.kind, added = ctx.counts.added,
      changed = ctx.counts.changed, left = ctx.counts.left, each = each } }
    ctx.lap("events")
    host.audit("registry.import", o.kind, ("rows=%d added=%d changed=%d unchanged=%d left=%d bad=%d encoding=%s")
      :format(rows, ctx.counts.added, ctx.counts.changed, ctx.good - ctx.counts.added - ctx.counts.changed,
        ctx.counts.left, bad, ctx.encoding or "?"))
    db.exec("DELETE FROM registry_stage")
    ctx.lap("clean")
  end)
  ctx.lap("commit")
  host.log.debug("import timings", { steps = concat(laps, " ") })
  cmd.progress()
  if not ok2 then
    if outcome == "refused" then return 1 end
    if outcome ~= "dry" then error(err, 0) end
  else
    for _, e in ipairs(events) do host.emit(e[1], e[2]) end
  end
  cmd.print(summary(ctx, o))
  return 0
end

function M.setup(host)
  host.command("registry import", {
    usage = USAGE,
    help = "imports a CSV file of children (with their contact cards), schools, people or pairings",
    run = function(cmd) return run(host, cmd) end,
  })
end

-- For the tests.
M.trim, M.map_header, M.kinds, M.problems = trim, map_header, kinds, problems

return M
