-- term_survey: the term survey of left-behind children (每学期动态核查).
--
-- At each term start every class teacher gets one message asking to
-- re-confirm the left-behind children of the class: still left behind? has
-- the guardian or the phone changed? A teacher confirms with
-- 'yizhan registry confirm' (or the school re-imports its updated CSV). A
-- week later the teachers who still have unconfirmed children are reminded
-- once; two weeks later the school's head and the deputy in charge get the
-- count still unconfirmed per class. This is the "dynamic management" county
-- reports ask for.
--
-- A child counts as confirmed this term when confirmed_on is on or after the
-- term's start, or when a re-import changed the record after it.
--
-- For IT staff: 'yizhan eval term_survey "survey()"' runs the term-start
-- survey now (a rerun sends nothing twice), 'follow_up()' the daily check;
-- both take a date ("2026-09-01") and a table of option overrides.
-- luacheck: globals survey remind escalate follow_up
local policy = require("lib.policy")

local host, options -- set in setup

local function days_between(from, to)
  return host.db.one("SELECT CAST(julianday(?) - julianday(?) AS INTEGER) AS d", to, from).d
end

local function add_days(date, n)
  return host.db.one("SELECT date(?, ?) AS d", date, ("%+d days"):format(n)).d
end

-- The term a survey on 'date' is about: the one under way, or one starting
-- within two weeks (when 'at' is set before the start).
local function term_of(date)
  local term = host.calendar.term(date)
  if term then return term end
  for i = 1, 14 do
    local d = add_days(date, i)
    term = host.calendar.term(d)
    if term and term.start == d then return term end
  end
  return nil
end

-- The epoch second of local midnight at the start of 'date' (changed_at is
-- epoch seconds). Measured from now's offset: a zone with summer time may be
-- an hour off, which a date comparison can afford.
local function midnight(date)
  local now = host.now()
  local d = host.date(now)
  local since_midnight = d.hour * 3600 + d.min * 60 + d.sec
  return now - since_midnight - days_between(date, policy.day_of(host, now)) * 86400
end

local function merged(overrides)
  if not overrides then return options end
  local o = {}
  for k, v in pairs(options) do o[k] = v end
  for k, v in pairs(overrides) do o[k] = v end
  return o
end

-- Children who still need confirming this term, as SQL: active, not
-- confirmed since the start, not re-imported with changes since. A
-- confirmation or change later than the clock (a simulation of a past
-- term, on data imported since) does not count.
local UNCONFIRMED = [[
  c.status = 'active'
  AND (c.confirmed_on IS NULL OR c.confirmed_on < :start OR c.confirmed_on > :today)
  AND (c.changed_at < :start_at OR c.changed_at > :now)]]

-- The parameters of UNCONFIRMED for a term.
local function window(term, extra)
  local p = { start = term.start, start_at = midnight(term.start), today = policy.day_of(host), now = host.now() }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

-- "张*明、李*红、王*等12人": a few names, so the message stays short.
local function name_list(names, count, o)
  local shown = {}
  for i, n in ipairs(names) do
    if i > o.list_max then break end
    shown[#shown + 1] = o.mask_names and host.text.mask_name(n) or n
  end
  local s = table.concat(shown, "、")
  if count > #shown then s = s .. "等" .. count .. "人" end
  return s
end

-- Sends one message: the text option or, with a template configured, that
-- template, with the same parameters (the core fills the text, and leaves
-- out those the county's template does not use). A message the outbox
-- refuses (a bad number, a template it cannot fill) is logged and skipped,
-- so one bad row does not stop the school's survey. Returns "sent",
-- "existing" or "failed".
local function deliver(o, to, key, what, params)
  local ok, res = pcall(host.send, policy.message(o, to, key, what .. "text", what .. "template", params))
  if not ok then
    host.log.warn("term survey: message refused", { key = key, error = tostring(res) })
    return "failed"
  end
  return res.existing and "existing" or "sent"
end

-- Each class teacher with unconfirmed children, with the first names.
local function teachers_to_ask(term, o)
  local list, by_id = {}, {}
  local sql = [[
    SELECT * FROM (
      SELECT p.id AS person, p.name AS teacher, p.phone, p.school_id, p.class, c.name AS child,
             count(*) OVER (PARTITION BY p.id) AS n,
             row_number() OVER (PARTITION BY p.id ORDER BY c.name, c.id) AS k
        FROM people p JOIN children c ON c.school_id = p.school_id AND c.class = p.class
       WHERE p.kind = 'teacher' AND p.class IS NOT NULL AND ]] .. UNCONFIRMED .. [[)
     WHERE k <= :max ORDER BY person, k]]
  for r in host.db.rows(sql, window(term, { max = o.list_max })) do
    local t = by_id[r.person]
    if not t then
      t = { id = r.person, name = r.teacher, phone = r.phone, class = r.class, count = r.n, names = {} }
      by_id[r.person] = t
      list[#list + 1] = t
    end
    t.names[#t.names + 1] = r.child
  end
  return list
end

-- Messages each teacher of 'list' under 'kind' (teacher or remind).
local function ask(term, o, kind, what)
  local counts = { sent = 0, existing = 0, failed = 0, no_phone = 0, children = 0 }
  for _, t in ipairs(teachers_to_ask(term, o)) do
    counts.children = counts.children + t.count
    if not t.phone then
      counts.no_phone = counts.no_phone + 1
      host.log.warn("term survey: class teacher has no phone, skipped",
                    { person = t.id, class = t.class, children = t.count, term = term.name })
    else
      local res = deliver(o, t.phone, ("survey:%s:%d:%s"):format(kind, t.id, term.name), what,
                          { teacher = t.name, count = t.count, names = name_list(t.names, t.count, o) })
      counts[res] = counts[res] + 1
    end
  end
  return counts
end

-- Children no class teacher heads: nobody was asked, the heads will see them.
local function without_teacher(term)
  return host.db.one([[
    SELECT count(*) AS n FROM children c
     WHERE ]] .. UNCONFIRMED .. [[ AND NOT EXISTS (
           SELECT 1 FROM people p WHERE p.kind = 'teacher' AND p.school_id = c.school_id AND p.class = c.class)]],
    window(term)).n
end

-- The term-start survey: one message per class teacher.
function survey(date, overrides)
  local o = merged(overrides)
  date = date or policy.day_of(host)
  local term = term_of(date)
  if not term then
    host.log.info("term survey: no term starts around this date", { date = date })
    return nil
  end
  local counts = ask(term, o, "teacher", "")
  counts.no_teacher = without_teacher(term)
  host.log.info("term survey: class teachers asked to confirm", {
    term = term.name, teachers = counts.sent, already = counts.existing, children = counts.children,
    skipped_no_phone = counts.no_phone, refused = counts.failed, no_class_teacher = counts.no_teacher })
  return counts
end

-- The reminder to teachers who still have unconfirmed children.
function remind(date, overrides)
  local o = merged(overrides)
  local term = term_of(date or policy.day_of(host))
  if not term then return nil end
  local counts = ask(term, o, "remind", "remind_")
  host.log.info("term survey: teachers reminded", {
    term = term.name, teachers = counts.sent, already = counts.existing, children = counts.children,
    skipped_no_phone = counts.no_phone, refused = counts.failed })
  return counts
end

-- Classes in the order a school lists them: 三年级1班 before 四年级2班 and
-- 十年级, 2班 before 10班.
local CN_DIGIT = { ["一"] = "1", ["二"] = "2", ["三"] = "3", ["四"] = "4", ["五"] = "5", ["六"] = "6",
                   ["七"] = "7", ["八"] = "8", ["九"] = "9", ["十"] = "T" }
local function class_key(class)
  local k = class:gsub("[\228-\233][\128-\191][\128-\191]", CN_DIGIT)
  k = k:gsub("(%d)T(%d)", "%1%2"):gsub("(%d)T", "%10"):gsub("T(%d)", "1%1"):gsub("T", "10")
  return (k:gsub("%d+", function(d) return ("%08d"):format(tonumber(d)) end))
end

-- The heads and deputies of schools with unconfirmed children: per class,
-- how many.
function escalate(date, overrides)
  local o = merged(overrides)
  date = date or policy.day_of(host)
  local term = term_of(date)
  if not term then return nil end
  local schools, order = {}, {}
  for r in host.db.rows([[
      SELECT c.school_id, c.class, count(*) AS n FROM children c WHERE ]] .. UNCONFIRMED .. [[
       GROUP BY c.school_id, c.class ORDER BY c.school_id, c.class]],
      window(term)) do
    local s = schools[r.school_id]
    if not s then
      s = { id = r.school_id, count = 0, classes = {} }
      schools[r.school_id] = s
      order[#order + 1] = s
    end
    s.count = s.count + r.n
    s.classes[#s.classes + 1] = { key = class_key(r.class), text = r.class .. r.n .. "人" }
  end
  local counts = { sent = 0, existing = 0, failed = 0, no_phone = 0, no_head = 0, schools = #order }
  local days = days_between(term.start, date)
  for _, s in ipairs(order) do
    table.sort(s.classes, function(a, b) return a.key < b.key end)
    local classes = {}
    for i = 1, math.min(#s.classes, o.class_max) do classes[i] = s.classes[i].text end
    local list = table.concat(classes, "、")
    if #s.classes > #classes then list = list .. "等" .. #s.classes .. "个班" end
    local heads = 0
    for p in host.db.rows([[SELECT id, name, phone, role FROM people
                             WHERE kind = 'teacher' AND role IN ('head', 'deputy') AND school_id = ?
                             ORDER BY role = 'deputy', id]], s.id) do
      heads = heads + 1
      if not p.phone then
        counts.no_phone = counts.no_phone + 1
        host.log.warn("term survey: head teacher has no phone, skipped", { person = p.id, school = s.id })
      else
        local res = deliver(o, p.phone, ("survey:escalate:%d:%s"):format(p.id, term.name), "escalate_",
                            { head = p.name, term = term.name, days = days, count = s.count, classes = list })
        counts[res] = counts[res] + 1
      end
    end
    if heads == 0 then
      counts.no_head = counts.no_head + 1
      host.log.warn("term survey: school has no head or deputy to tell", { school = s.id, unconfirmed = s.count })
    end
  end
  host.log.info("term survey: unconfirmed children escalated", {
    term = term.name, schools = counts.schools, heads = counts.sent, already = counts.existing,
    skipped_no_phone = counts.no_phone, schools_without_head = counts.no_head, refused = counts.failed })
  return counts
end

-- The daily check: on the first school day at or after remind_after_days
-- (escalate_after_days) from the term's start, the reminder (escalation)
-- goes, once a term. A day the host was off is caught up the next day. A
-- step is done once a message of it was queued, or nobody had to be told
-- (every child confirmed, no teacher or head to tell); while every one it
-- needed was refused or had no phone, it is tried again each school day.
function follow_up(date, overrides)
  local o = merged(overrides)
  date = date or policy.day_of(host)
  local term = host.calendar.term(date)
  if not term or not host.calendar.is_school_day(date) then return end
  local days = days_between(term.start, date)
  local steps = {
    { "remind", o.remind_after_days, remind },
    { "escalate", o.escalate_after_days, escalate },
  }
  for _, step in ipairs(steps) do
    local name, after, fn = step[1], step[2], step[3]
    local done_key = name .. ":" .. term.name
    if after > 0 and days >= after and not host.kv.get(done_key) then
      local c = fn(date, overrides)
      local queued = c.sent + c.existing
      if queued > 0 or queued + c.failed + c.no_phone == 0 then
        host.kv.put(done_key, date)
      else
        host.log.warn("term survey: nobody could be told, trying again the next school day",
                      { step = name, term = term.name, refused = c.failed, no_phone = c.no_phone })
      end
    end
  end
end

return {
  name = "term_survey",
  version = "1.0.0",
  description = "每学期初请班主任核对留守儿童信息，逾期未核对的报告校长 (the term survey)",
  requires = { "registry" },
  access = { read = { "children", "people" }, send = true },
  options = {
    at = "on term.start 09:00",          -- the survey: one message per class teacher
    follow_up_at = "0 9 * * *",          -- the daily check for the reminder and the escalation
    remind_after_days = 7,               -- the teachers' reminder (0: none)
    escalate_after_days = 14,            -- the heads' message (0: none)
    text = "{{teacher}}老师：新学期请核对本班{{count}}名留守儿童信息（{{names}}）："
      .. "是否仍留守、监护人及电话是否变化。核对后请回复教务处或运行 registry confirm。",
    remind_text = "{{teacher}}老师：本班还有{{count}}名留守儿童信息未核对（{{names}}），"
      .. "请尽快核对是否仍留守、监护人及电话是否变化，并回复教务处或运行 registry confirm。",
    escalate_text = "{{head}}校长：{{term}}学期留守儿童信息核对已过{{days}}天，本校仍有{{count}}名未核对："
      .. "{{classes}}。请督促班主任尽快核对。",
    template = false,                    -- a config template's name instead of text (same params)
    remind_template = false,
    escalate_template = false,
    mask_names = true,                   -- "张*明" in SMS text; false: full names
    list_max = 8,                        -- names listed in a teacher's message, then "等N人"
    class_max = 10,                      -- classes listed in a head's message, then "等N个班"
    channel = false,                     -- false: the default channel
  },
  setup = function(h, opts)
    host, options = h, opts
    h.cron("survey", opts.at, function(run) survey(policy.day_of(host, run.scheduled)) end)
    h.cron("follow_up", opts.follow_up_at, function(run) follow_up(policy.day_of(host, run.scheduled)) end)
  end,
}
