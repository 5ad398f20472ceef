-- guardian_meeting: invitations to the parents and temporary guardians of
-- left-behind children before a parents' meeting (家长会), and a reminder
-- the day before.
--
-- Two kinds of meeting:
--   * the Spring Festival meeting, when the parents working away are home:
--     from the calendar's spring_festival, held spring_days_before days
--     before it at spring_time, in every school;
--   * the sessions listed in the options, for all schools or some:
--       sessions = { { date = "2026-11-14 09:00", name = "期中家长会" },
--                    { date = "2026-12-19 14:30", name = "家长开放日",
--                      schools = { "城关小学" }, to = "guardians", id = "open-day" } }
--     (to: "all" (default), "parents" or "guardians"; id: defaults to the
--     date, give one when two sessions share a day).
-- Invitations go invite_days before the meeting at invite_time (sessions
-- are checked daily, so a session added late, or a PC that was off, still
-- invites before the day); the reminder the day before at remind_time.
--
-- Recipients: the father and mother (with a phone) and the primary guardian
-- of each active child of the meeting's schools; each number ONCE per
-- meeting, naming all its children (a grandmother caring for two
-- grandchildren gets one SMS). Keys "meeting:<id>:<who>:invite" and
-- ":remind", <who> the person's id, or for a number several people share
-- the first 16 hex digits of its SHA-256: never the number itself, which
-- the core would publish unmasked in message events and logs. Quiet hours
-- are the core's.
--   yizhan eval guardian_meeting 'invite({ date = "2026-11-14 09:00", name = "期中家长会" })'
-- luacheck: globals invite remind sessions_run meeting_of

local policy = require("lib.policy")

local host -- set in setup

local DAY = 86400
local WEEKDAY = { "日", "一", "二", "三", "四", "五", "六" }

-- Civil dates <-> day numbers (days since 1970-01-01), proleptic Gregorian.
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp + (mp < 10 and 3 or -9)
  return m <= 2 and y + 1 or y, m, d
end

local function day_number(s)
  local y, m, d = tostring(s):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)")
  return days_from_civil(tonumber(y), tonumber(m), tonumber(d))
end

local function day_string(n)
  return ("%04d-%02d-%02d"):format(civil_from_days(n))
end

local function today_of(t)
  local d = host.date(t)
  return days_from_civil(d.year, d.month, d.day)
end

-- "HH:MM" -> hour, minute (or nil).
local function clock(s)
  local h, m = tostring(s):match("^(%d%d?):(%d%d)$")
  h, m = tonumber(h), tonumber(m)
  if h and h < 24 and m < 60 then return h, m end
end

-- A session of the options as a meeting: { id, name, day (number), date
-- ("YYYY-MM-DD"), time ("HH:MM"), schools (list or nil), to }. Raises on a
-- malformed one, naming it.
function meeting_of(s, where)
  where = where or "session"
  if type(s) ~= "table" then error(("%s: expected a table, got %s"):format(where, type(s)), 0) end
  local date, time = tostring(s.date):match("^(%d%d%d%d%-%d%d%-%d%d) (%d%d?:%d%d)$")
  if not (date and clock(time)) then
    error(("%s: date: expected \"YYYY-MM-DD HH:MM\", got %s"):format(where, tostring(s.date)), 0)
  end
  if host.text.date(date) ~= date then
    error(("%s: date: %s does not exist"):format(where, date), 0)
  end
  if type(s.name) ~= "string" or s.name == "" then
    error(("%s: name: expected the meeting's name, like \"期中家长会\""):format(where), 0)
  end
  local schools
  if s.schools ~= nil then
    if type(s.schools) ~= "table" or #s.schools == 0 then
      error(("%s: schools: expected a list of school names"):format(where), 0)
    end
    schools = {}
    for i = 1, #s.schools do schools[i] = tostring(s.schools[i]) end
  end
  local to = s.to or "all"
  if to ~= "all" and to ~= "parents" and to ~= "guardians" then
    error(("%s: to: expected \"all\", \"parents\" or \"guardians\", got %s"):format(where, tostring(to)), 0)
  end
  local h, m = clock(time)
  return {
    id = s.id and tostring(s.id) or date, name = s.name, date = date, day = day_number(date),
    time = ("%d:%02d"):format(h, m), schools = schools, to = to,
  }
end

-- "2月3日（周三）9:00"
local function when(mt)
  local _, mo, d = civil_from_days(mt.day)
  return ("%d月%d日（周%s）%s"):format(mo, d, WEEKDAY[(mt.day + 4) % 7 + 1], mt.time)
end

-- The recipient in a key: the person with the number, or, when several
-- people share it, a hash of the number (one number, one message).
local function who(cur)
  if cur.person then return tostring(cur.person) end
  return host.crypto.sha256_hex(cur.phone):sub(1, 16)
end

-- Sends the invitation ("invite") or the reminder ("remind") of a meeting
-- to each of its numbers once. Returns a summary.
local function notify(kind, mt, over)
  local o = policy.options(host, over)
  local sum = { numbers = 0, children = 0, no_phone = 0, failed = 0, new = 0 }
  local first_error
  -- The schools as one string "\31A\31B\31" matched with instr().
  local schools
  if mt.schools then
    local known = {}
    for row in host.db.rows("SELECT name FROM schools") do known[row.name] = true end
    for _, name in ipairs(mt.schools) do
      if not known[name] then host.log.warn("meeting names an unknown school", { meeting = mt.id, school = name }) end
    end
    schools = "\31" .. table.concat(mt.schools, "\31") .. "\31"
  end
  local args = {
    parents = mt.to ~= "guardians" and 1 or 0, guardians = mt.to ~= "parents" and 1 or 0,
    all = schools and 0 or 1, schools = schools or "",
  }
  local audience = [[
    FROM children c
    JOIN schools s ON s.id = c.school_id
    JOIN guardianships g ON g.child_id = c.id
    JOIN people p ON p.id = g.person_id
    WHERE c.status = 'active'
      AND ((:parents AND g.relation IN ('father', 'mother')) OR (:guardians AND g.is_primary = 1))
      AND (:all OR instr(:schools, char(31) || s.name || char(31)) > 0)]]
  sum.no_phone = host.db.one("SELECT count(DISTINCT p.id) AS n " .. audience .. " AND p.phone IS NULL", args).n
  local max = math.max(1, math.tointeger(o.max_names) or 3)
  local cur
  local function flush()
    if not cur then return end
    local names = {}
    for i = 1, math.min(#cur.kids, max) do names[i] = cur.kids[i] end
    local child = table.concat(names, "、")
    if #cur.kids > max then child = child .. "等" .. #cur.kids .. "个孩子" end
    local ok, res = policy.send(host, o, cur.phone, "meeting:" .. mt.id .. ":" .. who(cur) .. ":" .. kind,
                                kind .. "_text", kind .. "_template", {
                                  child = child, school = table.concat(cur.schools, "、"),
                                  meeting = mt.name, date = when(mt),
                                })
    if ok then
      sum.numbers = sum.numbers + 1
      sum.children = sum.children + #cur.kids
      if not res.existing then sum.new = sum.new + 1 end
    else
      sum.failed = sum.failed + 1
      first_error = first_error or res
    end
  end
  host.db.tx(function()
    for row in host.db.rows("SELECT DISTINCT p.phone AS phone, p.id AS pid, c.id AS child, c.name AS name, "
                            .. "s.name AS school, s.id AS sid " .. audience
                            .. " AND p.phone IS NOT NULL ORDER BY p.phone, s.id, c.id", args) do
      if not cur or cur.phone ~= row.phone then
        flush()
        cur = { phone = row.phone, person = row.pid, kids = {}, seen = {}, schools = {}, school_seen = {} }
      elseif cur.person ~= row.pid then
        cur.person = false -- a number several people share
      end
      if not cur.seen[row.child] then
        cur.seen[row.child] = true
        cur.kids[#cur.kids + 1] = o.mask_names and host.text.mask_name(row.name) or row.name
      end
      if not cur.school_seen[row.sid] then
        cur.school_seen[row.sid] = true
        cur.schools[#cur.schools + 1] = row.school
      end
    end
    flush()
  end)
  if first_error then
    host.log.error("meeting messages refused", { meeting = mt.id, failed = sum.failed, error = tostring(first_error) })
  end
  host.log.info(kind == "invite" and "meeting invitations" or "meeting reminders", {
    meeting = mt.id, date = mt.date, numbers = sum.numbers, new = sum.new,
    children = sum.children, no_phone = sum.no_phone, failed = sum.failed,
  })
  return sum
end

-- invite(session or meeting [, options]) / remind(...): by hand or from a job.
function invite(s, over)
  return notify("invite", s.day and s or meeting_of(s), over)
end

function remind(s, over)
  return notify("remind", s.day and s or meeting_of(s), over)
end

-- The daily check of the sessions in the options: invitations from
-- invite_days before a session until the day before it (each number once),
-- the reminder on the day before. 'today' is "YYYY-MM-DD".
function sessions_run(kind, today, over)
  local o = policy.options(host, over)
  local day = day_number(today)
  local n = 0
  for i, s in ipairs(o.sessions) do
    local mt = meeting_of(s, "sessions[" .. i .. "]")
    local due
    if kind == "invite" then
      due = day >= mt.day - o.invite_days and day < mt.day
    else
      due = day == mt.day - 1
    end
    if due then
      notify(kind, mt, over)
      n = n + 1
    end
  end
  return n
end

-- The Spring Festival meeting whose invitation (or reminder) job ran at
-- 'scheduled'.
local function spring_meeting(kind, scheduled, o)
  local day = today_of(scheduled) + (kind == "invite" and o.invite_days or 1)
  local y = civil_from_days(day + o.spring_days_before)
  return meeting_of({ date = day_string(day) .. " " .. o.spring_time, name = o.spring_name,
                      id = "spring-" .. y }, "spring")
end

local function spring_spec(offset, time)
  if offset == 0 then return "on spring_festival " .. time end
  return ("on spring_festival %+d days %s"):format(offset, time)
end

local function daily_spec(time)
  local h, m = clock(time)
  return ("%d %d * * *"):format(m, h)
end

return {
  name = "guardian_meeting",
  version = "1.0.0",
  description = "春节前家长会及家长学校活动的邀请与前一天提醒（父母与临时监护人）",
  requires = { "registry" },
  access = { read = { "schools", "children", "people", "guardianships" }, send = true },
  options = {
    spring = true,                 -- hold the Spring Festival meeting
    spring_name = "春节家长会",
    spring_days_before = 3,        -- the meeting: 3 days before the festival, when parents are home
    spring_time = "09:00",
    sessions = {},                 -- other meetings: { { date = "2026-11-14 09:00", name = "期中家长会" } }
    invite_days = 7,               -- invitations a week before the meeting
    invite_time = "12:00",         -- at lunchtime, when parents working away read their phones
    remind_time = "19:00",         -- the reminder, the evening before
    max_names = 3,                 -- children named in one SMS, then "等N个孩子"
    mask_names = true,
    channel = false,
    invite_text = "{{child}}的家长您好：{{school}}定于{{date}}召开{{meeting}}，"
      .. "请您准时参加，与老师当面交流孩子的学习和生活情况。",
    invite_template = false,
    remind_text = "{{child}}的家长您好：{{school}}{{meeting}}将于明天{{date}}召开，请准时参加。",
    remind_template = false,
  },
  setup = function(h, opts)
    host = h
    for _, k in ipairs({ "spring_time", "invite_time", "remind_time" }) do
      if not clock(opts[k]) then error(("%s: expected \"HH:MM\", got %s"):format(k, tostring(opts[k])), 0) end
    end
    if math.type(opts.invite_days) ~= "integer" or opts.invite_days < 1 then
      error("invite_days: expected a whole number of days, 1 or more", 0)
    end
    if math.type(opts.spring_days_before) ~= "integer" then
      error("spring_days_before: expected a whole number of days", 0)
    end
    local ids = {}
    for i, s in ipairs(opts.sessions) do
      local mt = meeting_of(s, "sessions[" .. i .. "]")
      if ids[mt.id] then
        error(("sessions[%d]: a second meeting with id '%s': give each an id"):format(i, mt.id), 0)
      end
      ids[mt.id] = true
    end
    if opts.spring then
      -- Late is better than never, until the day before the meeting.
      h.cron("spring_invite", spring_spec(-(opts.spring_days_before + opts.invite_days), opts.invite_time),
             function(run) invite(spring_meeting("invite", run.scheduled, opts)) end,
             { grace = math.max(1, opts.invite_days - 1) * DAY })
      h.cron("spring_remind", spring_spec(-(opts.spring_days_before + 1), opts.remind_time),
             function(run) remind(spring_meeting("remind", run.scheduled, opts)) end,
             { grace = 12 * 3600 })
    end
    if #opts.sessions > 0 then
      h.cron("sessions_invite", daily_spec(opts.invite_time),
             function(run) sessions_run("invite", day_string(today_of(run.scheduled))) end)
      h.cron("sessions_remind", daily_spec(opts.remind_time),
             function(run) sessions_run("remind", day_string(today_of(run.scheduled))) end)
    end
  end,
}
