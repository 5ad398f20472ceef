-- letter_reminder: children away from their parents should write or call
-- them every month (给父母写信、打电话). On the 1st, each proxy parent (结对
-- 代理家长) or, for a child with none, the class teacher (班主任) gets ONE
-- digest of their children with no letter or call logged this month; around
-- the 20th, the temporary guardian of each child still missing is asked to
-- see to it. Letters and calls are logged in the registry's contact_log
-- (`yizhan registry log letter CHILD`). Nothing goes in the holidays; a
-- term that starts after the 1st gets its first month's digest on its
-- first day (term_start_at).
--
-- Built for a county's whole registry: each run is one set-based query (no
-- query per child) streamed into one transaction of host.send calls, in
-- bounded memory. Keys "letter:teacher:<person>:<month>" and
-- "letter:guardian:<child>:<month>" make a rerun send nothing twice.
--
-- IT staff can run a month by hand (the keys still hold):
--   yizhan eval letter_reminder 'remind_teachers("2026-10")'
-- luacheck: globals remind_teachers remind_guardians

local policy = require("lib.policy")

local host -- set in setup

-- Who is away, as the guardian's text says it.
local PARENT = { father = "爸爸", mother = "妈妈", both = "爸爸妈妈" }

local DAY = 86400

-- The names of a digest: up to max_names, then "等N人".
local function name_list(names, total)
  local s = table.concat(names, "、")
  if total > #names then s = s .. "等" .. total .. "人" end
  return s
end

-- The teachers' digest for 'month' ("YYYY-MM"). 'today' decides which
-- pairings are running (default: the first of the month). Returns a summary.
function remind_teachers(month, over, today)
  local o = policy.options(host, over)
  local from, to, m = policy.month_range(month)
  local max = math.max(1, math.tointeger(o.max_names) or 10)
  local sum = { teachers = 0, children = 0, no_phone = 0, no_teacher = 0, failed = 0 }
  local first_error
  -- One row per person to remind: how many children, and their names in
  -- the registry's order (class by class). A child's proxy parents (running
  -- pairings) are reminded; a child with none, its class teacher. A NULL
  -- teacher: the children nobody is there to remind. GROUP BY with
  -- group_concat, not a window, which costs twice as much on a county.
  local sql = [[
    SELECT a.teacher AS teacher, t.name AS tname, t.phone AS phone, a.n AS n, a.names AS names
    FROM (
      SELECT m.teacher, count(*) AS n,
             group_concat(CASE WHEN m.teacher IS NOT NULL THEN m.name END, char(31)) AS names
      FROM (
        SELECT c.name, coalesce(p.person_id, ct.id) AS teacher
        FROM children c
        LEFT JOIN pairings p ON p.child_id = c.id AND p.since <= :today
             AND (p."until" IS NULL OR p."until" > :today)
        LEFT JOIN people ct ON p.person_id IS NULL AND ct.kind = 'teacher'
             AND ct.school_id = c.school_id AND ct.class = c.class
        WHERE c.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM contact_log l
                          WHERE l.child_id = c.id AND l.kind IN ('letter', 'call')
                            AND l.on_date >= :from AND l.on_date < :to)
      ) m
      GROUP BY m.teacher
    ) a
    LEFT JOIN people t ON t.id = a.teacher
    ORDER BY a.teacher]]
  local function digest(row)
    if not row.phone then
      sum.no_phone = sum.no_phone + 1
      host.log.warn("teacher has no phone: letter digest not sent",
                    { person = row.teacher, children = row.n, period = month })
      return
    end
    -- The first max_names names only: a volunteer may have hundreds.
    local names = policy.first_items(row.names, max, function(name) return policy.child_name(host, o, name) end)
    local ok, err = policy.send(host, o, row.phone, "letter:teacher:" .. row.teacher .. ":" .. month,
                                "text", "template", {
                                  teacher = row.tname, count = row.n, month = m .. "月",
                                  names = name_list(names, row.n),
                                })
    if ok then
      sum.teachers = sum.teachers + 1
      sum.children = sum.children + row.n
    else
      sum.failed = sum.failed + 1
      first_error = first_error or err
    end
  end
  host.db.tx(function()
    for row in host.db.rows(sql, { today = today or from, from = from, to = to }) do
      if row.teacher then
        digest(row)
      else
        sum.no_teacher = row.n
      end
    end
  end)
  if first_error then
    host.log.error("letter digests refused", { failed = sum.failed, error = tostring(first_error) })
  end
  host.log.info("letter reminders to teachers", {
    period = month, teachers = sum.teachers, children = sum.children,
    no_phone = sum.no_phone, no_teacher = sum.no_teacher, failed = sum.failed,
  })
  return sum
end

-- The guardians' reminder for 'month': the primary guardian of each active
-- child still with no letter or call this month.
function remind_guardians(month, over)
  local o = policy.options(host, over)
  local from, to, m = policy.month_range(month)
  local sum = { guardians = 0, no_phone = 0, no_guardian = 0, failed = 0 }
  local first_error
  local sql = [[
    SELECT c.id AS child, c.name AS name, c.away AS away,
           g.person_id AS person, p.name AS guardian, p.phone AS phone
    FROM children c
    LEFT JOIN guardianships g ON g.child_id = c.id AND g.is_primary = 1
    LEFT JOIN people p ON p.id = g.person_id
    WHERE c.status = 'active'
      AND NOT EXISTS (SELECT 1 FROM contact_log l
                      WHERE l.child_id = c.id AND l.kind IN ('letter', 'call')
                        AND l.on_date >= :from AND l.on_date < :to)]]
  local mm = m .. "月"
  host.db.tx(function()
    for row in host.db.rows(sql, { from = from, to = to }) do
      if not row.person then
        sum.no_guardian = sum.no_guardian + 1
      elseif not row.phone then
        sum.no_phone = sum.no_phone + 1
      else
        local ok, err = policy.send(host, o, row.phone, "letter:guardian:" .. row.child .. ":" .. month,
                                    "guardian_text", "guardian_template", {
                                      guardian = row.guardian, child = policy.child_name(host, o, row.name),
                                      parent = PARENT[row.away] or "父母", month = mm,
                                    })
        if ok then
          sum.guardians = sum.guardians + 1
        else
          sum.failed = sum.failed + 1
          first_error = first_error or err
        end
      end
    end
  end)
  if first_error then
    host.log.error("letter reminders to guardians refused",
                   { failed = sum.failed, error = tostring(first_error) })
  end
  host.log.info("letter reminders to guardians", {
    period = month, guardians = sum.guardians, no_phone = sum.no_phone,
    no_guardian = sum.no_guardian, failed = sum.failed,
  })
  return sum
end

-- A job's run: the month of its scheduled time, unless the school is out.
local function job(fn)
  return policy.month_job(host, "letter reminders", function(day) return fn(day:sub(1, 7), nil, day) end)
end

-- The first day of a term that starts after the 1st of its month: the
-- month's digest goes now (see policy.term_start_job).
local function term_start_job(fn)
  return policy.term_start_job(host, "a term starts after the 1st: the month's letter digest goes on its first day",
                               function(day) return fn(day:sub(1, 7), nil, day) end)
end

return {
  name = "letter_reminder",
  version = "1.0.0",
  description = "每月提醒留守儿童给在外务工的父母写信或打电话（教师汇总、监护人提醒）",
  requires = { "registry" },
  access = {
    read = { "children", "people", "pairings", "guardianships", "contact_log" },
    send = true,
  },
  options = {
    at = "0 9 1 * *",             -- the teachers' digest (each month's 1st, 09:00)
    term_start_at = "on term.start 09:00", -- the digest of a month whose 1st is before its term; "": none
    guardian_at = "0 18 20 * *",  -- the guardians' reminder, after school; "": none
    only_in_term = true,          -- no reminders when the school calendar says holidays
    max_names = 10,               -- names listed in a digest, then "等N人"
    mask_names = true,            -- 张*明 in SMS text; false: full names
    channel = false,              -- false: the default channel
    text = "{{teacher}}老师：本月尚有{{count}}名留守儿童未给父母写信或打电话：{{names}}。请督促孩子与父母联系。",
    template = false,             -- a config template's name instead of text
    guardian_text = "{{guardian}}您好：{{child}}本月还没有给在外务工的{{parent}}写信或打电话，"
      .. "请督促孩子和{{parent}}联系。",
    guardian_template = false,
  },
  setup = function(h, opts)
    host = h
    -- Generous grace: a township PC off over a long weekend (the 1st of
    -- October is National Day) still sends the month's digest when it is on.
    h.cron("teachers", opts.at, job(remind_teachers), { grace = 7 * DAY })
    -- (A calendar without terms runs every month from the 1st: no term starts.)
    if not policy.off(opts.term_start_at) and policy.has_terms(h) then
      h.cron("term_start", opts.term_start_at, term_start_job(remind_teachers), { grace = 7 * DAY })
    end
    if not policy.off(opts.guardian_at) then
      h.cron("guardians", opts.guardian_at, job(function(month) return remind_guardians(month) end),
             { grace = 3 * DAY })
    end
  end,
}
