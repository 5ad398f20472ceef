-- visit_schedule: home visits from the school calendar. Every active
-- left-behind child gets three scheduled visits a term (term start, mid-term,
-- term end), assigned to the class teacher (班主任). The teacher gets one
-- digest SMS a few days before visits fall due; visits still not done some
-- days after their due date go, counted per class, to the school's head and
-- deputy. Recording a visit as done (`yizhan registry visit done CHILD`)
-- stops both.
--
-- When rows are made: on the first day of each term (plan_at), at every
-- start for the current term (a plugin enabled mid-term catches up), every
-- morning with the daily run, and at once when the registry announces a new
-- child (registry.child_added) or a child back to active. A visit whose due
-- date has already passed when a child is first planned is not created (a
-- child enrolled in December gets the term-end visit only), so a late start
-- does not escalate a backlog nobody could have done.
--
-- Each visit is reminded once and escalated once: visit_notices records the
-- day each went (or, for an escalation, that the school has no head to
-- tell, which is logged that day only), so the daily run picks up what
-- falls due in the next remind_days_before days (or became overdue) and was
-- not handled yet, and a run missed while the PC was off is caught up the
-- next morning. A reminder with nobody to tell yet (no class teacher, or
-- one without a phone) is not noted: it goes the morning someone can be
-- told, and until then is logged once a day. Message keys name the
-- recipient and the day ("visit:remind:<teacher>:<date>",
-- "visit:escalate:<head>:<date>"), so a rerun the same day sends nothing
-- twice.

local KIND_LABEL = { term_start = "开学家访", mid_term = "期中家访", term_end = "期末家访" }

local policy = require("lib.policy")

local host, opts -- set in setup

-- date + n days (SQLite's calendar arithmetic).
local function shift(date, n)
  return host.db.one("SELECT date(?, ?) AS d", date, string.format("%+d days", n)).d
end

-- "2026-11-09" -> "11月9日", as a date reads in an SMS.
local function md(date)
  local m, d = date:match("^%d+-(%d+)-(%d+)$")
  return tonumber(m) .. "月" .. tonumber(d) .. "日"
end

-- The due date of each scheduled kind in a term, kept inside the term.
local function due_dates(term)
  local function clamp(d)
    if d < term.start then return term.start end
    if d > term["end"] then return term["end"] end
    return d
  end
  return {
    term_start = clamp(shift(term.start, opts.start_window_days)),
    mid_term = clamp(shift(term.mid, opts.mid_offset_days)),
    term_end = clamp(shift(term["end"], opts.end_offset_days)),
  }
end

-- The class teacher of a child's class: the teacher heading it (the lowest
-- id when two are recorded), as an SQL expression over children c.
local CLASS_TEACHER = [[(SELECT min(p.id) FROM people p
   WHERE p.kind = 'teacher' AND p.school_id = c.school_id AND p.class = c.class)]]

-- Creates the visits of the term around `today` that are missing, for every
-- active child or one (child_id). Returns how many rows were made.
local function plan(today, child_id)
  local term = host.calendar.term(today)
  if not term then return 0 end
  local dues, made = due_dates(term), 0
  for _, kind in ipairs(opts.kinds) do
    if dues[kind] >= today then
      made = made + host.db.exec([[
        INSERT INTO visits(child_id, visitor_id, kind, term, due)
        SELECT c.id, ]] .. CLASS_TEACHER .. [[, :kind, :term, :due
          FROM children c
         WHERE c.status = 'active' AND (:child IS NULL OR c.id = :child)
           AND NOT EXISTS (SELECT 1 FROM visits v
                            WHERE v.child_id = c.id AND v.term = :term AND v.kind = :kind
                              AND v.kind <> 'ad_hoc')
         ORDER BY c.id]], { kind = kind, term = term.name, due = dues[kind], child = child_id })
    end
  end
  if made > 0 then
    local classes = {}
    for row in host.db.rows([[
        SELECT DISTINCT s.name AS school, c.class FROM visits v
          JOIN children c ON c.id = v.child_id JOIN schools s ON s.id = c.school_id
         WHERE v.term = ? AND v.visitor_id IS NULL AND v.done IS NULL
           AND (? IS NULL OR c.id = ?)
         ORDER BY s.name, c.class]], term.name, child_id, child_id) do
      classes[#classes + 1] = row.school .. " " .. row.class
    end
    host.log.info("visits planned", { term = term.name, visits = made })
    if #classes > 0 then
      -- Nobody heads these classes yet: the visits wait for a teacher (the
      -- daily run assigns one as soon as the registry has it).
      host.log.warn("visits without a class teacher",
                    { term = term.name, classes = table.concat(classes, ",") })
    end
  end
  return made
end

-- The class teacher of the child a visit is for, as an SQL expression.
local TEACHER_OF_VISIT = [[(SELECT min(p.id) FROM children c JOIN people p
   ON p.kind = 'teacher' AND p.school_id = c.school_id AND p.class = c.class
   WHERE c.id = visits.child_id)]]

-- Open scheduled visits with no visitor get the class teacher once the
-- registry has one; a child who changed class (child_id) gets the new
-- class's teacher (or none yet) for the visits still to come, and so does
-- every child with all = true (an import too large for an event each).
local function assign(today, child_id, all)
  return host.db.exec([[
    UPDATE visits SET visitor_id = ]] .. TEACHER_OF_VISIT .. [[
     WHERE done IS NULL AND kind <> 'ad_hoc'
       AND (:child IS NULL AND visitor_id IS NULL AND ]] .. TEACHER_OF_VISIT .. [[ IS NOT NULL
            OR child_id = :child AND due >= :today
            OR :all AND due >= :today AND visitor_id IS NOT ]] .. TEACHER_OF_VISIT .. [[)]],
    { child = child_id, today = today, all = all and 1 or 0 })
end

-- Sends the option text or, when the option's template is set, that config
-- template, with the same parameters (the core fills the text, and leaves
-- out those the template does not use). A message refused (a template the
-- county's config lacks, a bad number) is logged and the run goes on; it is
-- not noted, so the next morning tries again. Returns the outbox row or nil.
local function send(to, key, text_opt, tpl_opt, params)
  local ok, res = pcall(host.send, policy.message(opts, to, key, text_opt, tpl_opt, params))
  if ok then return res end
  host.log.error("visit message refused", { key = key, error = tostring(res) })
  return nil
end

-- "期中家访（11月9日前）：张*明、李*红等12人；…": groups of visits by
-- kind and due date, at most list_max names in all.
local function visit_list(visits)
  local parts, shown, group = {}, 0, nil
  local function close()
    if not group then return end
    local s = KIND_LABEL[group.kind] .. "（" .. md(group.due) .. "前）"
    if #group.names == 0 then
      s = s .. group.n .. "人"
    else
      s = s .. "：" .. table.concat(group.names, "、")
      if #group.names < group.n then s = s .. "等" .. group.n .. "人" end
    end
    parts[#parts + 1] = s
  end
  for _, v in ipairs(visits) do
    if not group or group.kind ~= v.kind or group.due ~= v.due then
      close()
      group = { kind = v.kind, due = v.due, names = {}, n = 0 }
    end
    group.n = group.n + 1
    if shown < opts.list_max then
      group.names[#group.names + 1] = policy.child_name(host, opts, v.child)
      shown = shown + 1
    end
  end
  close()
  return table.concat(parts, "；")
end

-- Records that a visit's reminder or escalation is done with: told = 1
-- when a message went, 0 when a school had no head to escalate to, which is
-- said once in the log rather than every day.
local function note(visit_id, kind, today, person_id, told)
  host.db.exec("INSERT INTO visit_notices(visit_id, kind, sent_on, person_id, told)"
               .. " VALUES (?, ?, ?, ?, ?)", visit_id, kind, today, person_id, told)
end

-- Says what cannot be reminded (a class without a teacher, a teacher
-- without a phone) once a day, however many runs the day has: the visits
-- wait, unnoted, for someone to tell.
local function warn_once(today, key, msg, fields)
  local said = host.kv.get("unreachable")
  if type(said) ~= "table" or said.day ~= today then said = { day = today, keys = {} } end
  if said.keys[key] then return end
  said.keys[key] = true
  host.kv.put("unreachable", said)
  host.log.warn(msg, fields)
end

-- Reminds each teacher, in one digest, of the open visits due within the
-- next remind_days_before days that were not reminded yet.
local function remind(today)
  local by_teacher, order, no_teacher, classes = {}, {}, 0, {}
  for v in host.db.rows([[
      SELECT v.id, v.kind, v.due, v.visitor_id, c.name AS child, c.class, s.name AS school,
             p.name AS teacher, p.phone
        FROM visits v JOIN children c ON c.id = v.child_id
        JOIN schools s ON s.id = c.school_id
        LEFT JOIN people p ON p.id = v.visitor_id
       WHERE v.done IS NULL AND v.kind <> 'ad_hoc' AND c.status = 'active'
         AND v.due BETWEEN :today AND date(:today, :ahead)
         AND NOT EXISTS (SELECT 1 FROM visit_notices n
                          WHERE n.visit_id = v.id AND n.kind = 'remind')
       ORDER BY v.visitor_id, v.due, v.kind, c.class, c.id]],
      { today = today, ahead = string.format("+%d days", opts.remind_days_before) }) do
    if not v.visitor_id then
      no_teacher = no_teacher + 1
      local k = v.school .. " " .. v.class
      if not classes[k] then
        classes[k] = 0
        classes[#classes + 1] = k
      end
      classes[k] = classes[k] + 1
    else
      local t = by_teacher[v.visitor_id]
      if not t then
        t = { id = v.visitor_id, name = v.teacher, phone = v.phone, visits = {} }
        by_teacher[v.visitor_id] = t
        order[#order + 1] = t
      end
      t.visits[#t.visits + 1] = v
    end
  end
  for _, k in ipairs(classes) do
    warn_once(today, "class:" .. k, "visits due but the class has no teacher to remind",
              { class = k, visits = classes[k], date = today })
  end
  local reminded, visits, no_phone = 0, 0, 0
  for _, t in ipairs(order) do
    if not t.phone then
      no_phone = no_phone + 1
      warn_once(today, "teacher:" .. t.id, "visits due but the class teacher has no phone",
                { person = t.id, visits = #t.visits, date = today })
    else
      local res = send(t.phone, string.format("visit:remind:%d:%s", t.id, today),
                       "remind_text", "remind_template",
                       { teacher = t.name, count = #t.visits, list = visit_list(t.visits) })
      -- A digest already sent today under this key (a rerun that found
      -- visits added since) leaves them for tomorrow's digest.
      if res and not res.existing then
        reminded, visits = reminded + 1, visits + #t.visits
        for _, v in ipairs(t.visits) do note(v.id, "remind", today, t.id, 1) end
      end
    end
  end
  return { reminded_teachers = reminded, reminded_visits = visits,
           skipped_no_phone = no_phone, no_teacher = no_teacher }
end

-- "三(1)班（王丽）3次、三(2)班（未定班主任）1次等5个班": the classes with
-- the most overdue visits first.
local function class_list(classes)
  table.sort(classes, function(a, b)
    if #a.visits ~= #b.visits then return #a.visits > #b.visits end
    return a.class < b.class
  end)
  local parts = {}
  for i, cl in ipairs(classes) do
    if i > opts.list_max then
      parts[#parts] = parts[#parts] .. "等" .. #classes .. "个班"
      break
    end
    parts[#parts + 1] = string.format("%s（%s）%d次", cl.class, cl.teacher or "未定班主任", #cl.visits)
  end
  return table.concat(parts, "、")
end

-- Tells the head and the deputy of each school, in one digest each, of the
-- visits overdue by escalate_after_days or more that were not escalated yet.
local function escalate(today)
  local schools, order = {}, {}
  for v in host.db.rows([[
      SELECT v.id, c.school_id, s.name AS school, c.class, v.visitor_id, p.name AS teacher
        FROM visits v JOIN children c ON c.id = v.child_id
        JOIN schools s ON s.id = c.school_id
        LEFT JOIN people p ON p.id = v.visitor_id
       WHERE v.done IS NULL AND v.kind <> 'ad_hoc' AND c.status = 'active'
         AND v.due <= date(:today, :back)
         AND NOT EXISTS (SELECT 1 FROM visit_notices n
                          WHERE n.visit_id = v.id AND n.kind = 'escalate')
       ORDER BY s.name, c.class, v.visitor_id, v.id]],
      { today = today, back = string.format("-%d days", opts.escalate_after_days) }) do
    local s = schools[v.school_id]
    if not s then
      s = { id = v.school_id, name = v.school, classes = {}, count = 0 }
      schools[v.school_id] = s
      order[#order + 1] = s
    end
    local cl = s.classes[#s.classes]
    if not cl or cl.class ~= v.class or cl.visitor ~= v.visitor_id then
      cl = { class = v.class, visitor = v.visitor_id, teacher = v.teacher, visits = {} }
      s.classes[#s.classes + 1] = cl
    end
    cl.visits[#cl.visits + 1] = v.id
    s.count = s.count + 1
  end
  local told, visits, no_head = 0, 0, 0
  for _, s in ipairs(order) do
    local list, sent_new = class_list(s.classes), false
    local heads = 0
    for head in host.db.rows([[
        SELECT id, name, phone FROM people
         WHERE kind = 'teacher' AND role IN ('head', 'deputy') AND school_id = ?
         ORDER BY role = 'deputy', id]], s.id) do
      if head.phone then
        heads = heads + 1
        local res = send(head.phone, string.format("visit:escalate:%d:%s", head.id, today),
                         "escalate_text", "escalate_template", {
                           head = head.name, school = s.name, count = s.count,
                           days = opts.escalate_after_days, list = list,
                         })
        if res and not res.existing then
          told, sent_new = told + 1, true
        end
      end
    end
    if heads == 0 then
      no_head = no_head + 1
      host.log.warn("overdue visits but no head or deputy with a phone",
                    { school = s.name, visits = s.count })
    elseif sent_new then
      visits = visits + s.count
    end
    -- A digest already sent today under these keys (a rerun that found
    -- visits overdue since) leaves them for tomorrow's.
    if heads == 0 or sent_new then
      for _, cl in ipairs(s.classes) do
        for _, id in ipairs(cl.visits) do note(id, "escalate", today, nil, heads > 0 and 1 or 0) end
      end
    end
  end
  return { escalated_heads = told, escalated_visits = visits, schools_without_head = no_head }
end

-- The morning run: plan what is missing, assign teachers, remind, escalate.
-- Global, so IT staff can run a day by hand (`yizhan eval visit_schedule
-- 'visit_day("2026-11-06")'`) and the tests can try other options.
-- luacheck: globals visit_day
function visit_day(today, options)
  local saved = opts
  opts = options and policy.options(host, options) or opts
  local ok, err = pcall(function()
    host.db.tx(function()
      plan(today)
      assign(today)
      -- Notices of visits the registry deleted are of no use any more, nor
      -- reminders noted by an earlier version when nobody could be told.
      host.db.exec("DELETE FROM visit_notices WHERE visit_id NOT IN (SELECT id FROM visits)")
      host.db.exec("DELETE FROM visit_notices WHERE kind = 'remind' AND told = 0")
      -- One line a run: info when anyone was told or skipped, else debug.
      local summary, busy = { date = today }, false
      for _, counts in ipairs({ remind(today), escalate(today) }) do
        for k, n in pairs(counts) do
          summary[k] = n
          busy = busy or n > 0
        end
      end
      if busy then host.log.info("visit run", summary) else host.log.debug("visit run", summary) end
    end)
  end)
  opts = saved
  if not ok then error(err, 0) end
end

local function check_options(o)
  for _, kind in ipairs(o.kinds) do
    if not KIND_LABEL[kind] then
      error(("visit_schedule: kinds: unknown kind '%s' (expected term_start, mid_term, term_end)")
            :format(tostring(kind)), 0)
    end
  end
  for _, k in ipairs({ "start_window_days", "remind_days_before", "escalate_after_days", "list_max" }) do
    if o[k] < 0 or o[k] ~= math.floor(o[k]) then
      error(("visit_schedule: %s must be a whole number of days >= 0, got %s"):format(k, o[k]), 0)
    end
  end
end

return {
  name = "visit_schedule",
  version = "1.0.0",
  description = "按校历安排开学、期中、期末家访，到期前提醒班主任，逾期报告校长",
  requires = { "registry" },
  owns = { "visit_notices" },
  access = { read = { "schools", "people", "children" }, write = { "visits" }, send = true },
  options = {
    at = "0 8 * * *",                 -- the daily run: plan, remind, escalate
    plan_at = "on term.start 07:00",  -- the term's visits on its first day
    kinds = { "term_start", "mid_term", "term_end" },
    start_window_days = 14,           -- term_start due this many days after term.start
    mid_offset_days = 0,              -- mid_term due at term.mid + this (negative: before)
    end_offset_days = 0,              -- term_end due at term.end + this (negative: before)
    remind_days_before = 3,
    escalate_after_days = 7,
    list_max = 5,                     -- names (or classes) in a digest, then "等N人"
    mask_names = true,                -- 张*明 instead of 张小明 in SMS text
    remind_text = "{{teacher}}老师您好：您有{{count}}次留守儿童家访即将到期，{{list}}。"
      .. "请按时家访，完成后及时登记。",
    escalate_text = "{{head}}您好：{{school}}有{{count}}次留守儿童家访逾期{{days}}天以上仍未完成："
      .. "{{list}}。请督促落实。",
    remind_template = false,          -- or a config template (params teacher, count, list)
    escalate_template = false,        -- or a config template (params head, school, count, days, list)
    channel = false,
  },
  migrations = {
    -- One row per visit and kind of notice: each visit is reminded once
    -- and escalated once. person_id: the teacher reminded; told: 0 when
    -- nobody could be told (an escalation in a school with no head).
    [[CREATE TABLE visit_notices (
        visit_id  INTEGER NOT NULL,
        kind      TEXT NOT NULL CHECK (kind IN ('remind', 'escalate')),
        sent_on   TEXT NOT NULL,
        person_id INTEGER,
        told      INTEGER NOT NULL CHECK (told IN (0, 1)),
        PRIMARY KEY (visit_id, kind)
    ) WITHOUT ROWID]],
  },
  setup = function(h, o)
    host, opts = h, o
    check_options(o)
    if not policy.has_terms(h) then
      error("visit_schedule: the school calendar has no terms: add calendar = { terms = {"
            .. " { name =, start =, mid =, [\"end\"] = } } } to the config", 0)
    end

    h.cron("plan_term", o.plan_at, function(run)
      plan(policy.day_of(host, run.scheduled))
    end)
    h.cron("daily", o.at, function(run)
      visit_day(policy.day_of(host, run.scheduled))
    end)

    -- A child added or back to active gets this term's visits at once; a
    -- child who changed class gets the new class teacher.
    h.on("registry.child_added", function(data)
      h.db.tx(plan, policy.day_of(h, h.now()), data.child)
    end)
    -- An import too large for an event per child (see the registry) says
    -- so once: every child is looked at, planned and given the class
    -- teacher of the class it is in now.
    h.on("registry.imported", function(data)
      if data.kind == "children" and not data.each then
        h.db.tx(function(today)
          plan(today)
          assign(today, nil, true)
        end, policy.day_of(h, h.now()))
      end
    end)
    -- child_left is said only of a child no longer active; one back to
    -- active (a re-import, registry confirm --status) is a change of status.
    h.on("registry.child_changed", function(data)
      local today = policy.day_of(h, h.now())
      for _, f in ipairs(data.fields or {}) do
        if f == "class" or f == "school" then
          h.db.tx(assign, today, data.child)
          break
        end
      end
      for _, f in ipairs(data.fields or {}) do
        if f == "status" then
          local c = h.db.one("SELECT status FROM children WHERE id = ?", data.child)
          if c and c.status == "active" then h.db.tx(plan, today, data.child) end
          break
        end
      end
    end)

    -- Catch up the current term (enabled mid-term, or off at its start)
    -- as soon as the host runs tasks (the daemon, simulate, or a command's
    -- end), not inside setup.
    h.after(0, function()
      h.db.tx(plan, policy.day_of(h, h.now()))
    end)
  end,
}
