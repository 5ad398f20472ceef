-- guardian_checkin: a class teacher (班主任) should talk with the temporary
-- guardian of each left-behind child in the class every month (联系临时
-- 监护人). On the 1st, each class teacher gets one SMS listing the guardians
-- (the primary guardians of the class's active children, other than a
-- parent at home) not contacted yet
-- this month; on the 15th, a second one listing those still not contacted.
-- A contact is logged in the registry's contact_log as guardian_contact
-- (`yizhan registry log guardian-contact CHILD`); one about any child in
-- a guardian's care counts for all of them. A term that starts after the
-- 1st gets its first month's lists on its first day (term_start_at).
--
-- One set-based query per run; keys "checkin:teacher:<person>:<month>" and
-- "checkin:teacher:<person>:<month>:remind" make a rerun send nothing twice.
--   yizhan eval guardian_checkin 'checkin("2026-10")'
-- luacheck: globals checkin

local policy = require("lib.policy")

local host -- set in setup

local DAY = 86400

-- What the guardian is to the child, as the teacher's SMS says it.
local RELATION = {
  father = "父亲", mother = "母亲", paternal_grandparent = "祖父母",
  maternal_grandparent = "外祖父母", other_relative = "亲属", other = "监护人",
}

-- "李秀英（张*明、张*红的祖父母）": a guardian and the children concerned,
-- from "name \29 relation \29 id \30 child \28 id \30 child ...".
local function entry(text, o)
  local gname, relation, list = text:match("^(.-)\29(.-)\29(.*)$")
  local kids = {}
  for id, name in list:gmatch("(%d+)\30([^\28]*)") do
    kids[#kids + 1] = { id = tonumber(id), name = name }
  end
  table.sort(kids, function(x, y) return x.id < y.id end)
  for i, k in ipairs(kids) do
    kids[i] = o.mask_names and host.text.mask_name(k.name) or k.name
  end
  return ("%s（%s的%s）"):format(gname, table.concat(kids, "、"), RELATION[relation] or "监护人")
end

-- The teachers' lists for 'month' ("YYYY-MM"); remind = the second SMS of
-- the month. Returns a summary.
function checkin(month, remind, over)
  local o = policy.options(host, over)
  local from, to, m = policy.month_range(month)
  local max = math.max(1, math.tointeger(o.max_names) or 6)
  local sum = { teachers = 0, guardians = 0, no_phone = 0, failed = 0 }
  local first_error
  -- One row per class teacher: how many guardians not contacted, and
  -- each (in the registry's order) with the children concerned. Two
  -- GROUP BYs with group_concat rather than a window: half the time on a
  -- county. A grandmother of two children of the class is one entry.
  local sql = [[
    SELECT y.teacher AS teacher, t.name AS tname, t.phone AS phone, y.n AS n, y.entries AS entries
    FROM (
      SELECT x.teacher AS teacher, count(*) AS n,
             group_concat(x.gname || char(29) || x.relation || char(29) || x.kids, char(31)) AS entries
      FROM (
        SELECT ct.id AS teacher, gp.name AS gname, min(g.relation) AS relation,
               group_concat(c.id || char(30) || c.name, char(28)) AS kids
        FROM children c
        JOIN people ct ON ct.kind = 'teacher' AND ct.school_id = c.school_id AND ct.class = c.class
        JOIN guardianships g ON g.child_id = c.id AND g.is_primary = 1
                             AND g.relation NOT IN ('father', 'mother')
        JOIN people gp ON gp.id = g.person_id
        WHERE c.status = 'active'
          -- Contacted this month about any child in her care (a
          -- grandmother of two siblings is talked with once, about both).
          AND NOT EXISTS (SELECT 1 FROM guardianships g2
                            JOIN contact_log l ON l.child_id = g2.child_id
                           WHERE g2.person_id = g.person_id AND g2.is_primary = 1
                             AND l.kind = 'guardian_contact'
                             AND l.on_date >= :from AND l.on_date < :to)
        GROUP BY ct.id, g.person_id
      ) x
      GROUP BY x.teacher
    ) y
    JOIN people t ON t.id = y.teacher
    ORDER BY y.teacher]]
  local function list(row)
    if not row.phone then
      sum.no_phone = sum.no_phone + 1
      host.log.warn("teacher has no phone: guardian check-in list not sent",
                    { person = row.teacher, guardians = row.n, period = month })
      return
    end
    local names = policy.first_items(row.entries, max, function(e) return entry(e, o) end)
    local text = table.concat(names, "、")
    if row.n > #names then text = text .. "等" .. row.n .. "位" end
    local key = "checkin:teacher:" .. row.teacher .. ":" .. month .. (remind and ":remind" or "")
    local ok, err = policy.send(host, o, row.phone, key, remind and "remind_text" or "text",
                                remind and "remind_template" or "template",
                                { teacher = row.tname, count = row.n, names = text, month = m .. "月" })
    if ok then
      sum.teachers = sum.teachers + 1
      sum.guardians = sum.guardians + row.n
    else
      sum.failed = sum.failed + 1
      first_error = first_error or err
    end
  end
  host.db.tx(function()
    for row in host.db.rows(sql, { from = from, to = to }) do list(row) end
  end)
  if first_error then
    host.log.error("guardian check-in lists refused", { failed = sum.failed, error = tostring(first_error) })
  end
  host.log.info(remind and "guardian check-in reminders" or "guardian check-in lists", {
    period = month, teachers = sum.teachers, guardians = sum.guardians,
    no_phone = sum.no_phone, failed = sum.failed,
  })
  return sum
end

local function job(remind)
  return policy.month_job(host, "guardian check-in", function(day) return checkin(day:sub(1, 7), remind) end)
end

-- The first day of a term that starts after the 1st of its month: the
-- month's lists go now (see policy.term_start_job).
local function term_start_job()
  return policy.term_start_job(host,
                               "a term starts after the 1st: the month's guardian check-in lists go on its first day",
                               function(day) return checkin(day:sub(1, 7), false) end)
end

return {
  name = "guardian_checkin",
  version = "1.0.0",
  description = "每月提醒班主任联系留守儿童的临时监护人",
  requires = { "registry" },
  access = { read = { "children", "people", "guardianships", "contact_log" }, send = true },
  options = {
    at = "0 9 1 * *",          -- the month's list (the 1st, 09:00)
    term_start_at = "on term.start 09:00", -- the list of a month whose 1st is before its term; "": none
    remind_at = "0 9 15 * *",  -- those still not contacted; "": no second SMS
    only_in_term = true,       -- nothing when the school calendar says holidays
    max_names = 6,             -- guardians listed, then "等N位" (2-3 SMS parts)
    mask_names = true,         -- children's names as 张*明; false: full names
    channel = false,
    text = "{{teacher}}老师：本月请联系以下{{count}}位留守儿童的临时监护人：{{names}}。联系后请登记。",
    template = false,
    remind_text = "{{teacher}}老师：本月尚有{{count}}位临时监护人未联系：{{names}}。请尽快联系并登记。",
    remind_template = false,
  },
  setup = function(h, opts)
    host = h
    h.cron("list", opts.at, job(false), { grace = 7 * DAY })
    -- (A calendar without terms runs every month from the 1st: no term starts.)
    if not policy.off(opts.term_start_at) and policy.has_terms(h) then
      h.cron("term_start", opts.term_start_at, term_start_job(), { grace = 7 * DAY })
    end
    if not policy.off(opts.remind_at) then
      h.cron("remind", opts.remind_at, job(true), { grace = 3 * DAY })
    end
  end,
}
