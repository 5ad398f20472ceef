-- Tests of guardian_meeting: 'yizhan test guardian_meeting' (the demo
-- county's calendar: the Spring Festival on 2027-02-06). The fake clock
-- starts at 2026-09-01 08:00 and carries on from test to test.
-- luacheck: globals test host invite remind sessions_run meeting_of

-- The registry rows: tests/plugins/fixtures/county.sql (t.fixture("county")).

local function inv(child, school, date, meeting)
  return child .. "的家长您好：" .. school .. "定于" .. date .. "召开" .. meeting
    .. "，请您准时参加，与老师当面交流孩子的学习和生活情况。"
end

local function rem(child, school, date, meeting)
  return child .. "的家长您好：" .. school .. meeting .. "将于明天" .. date .. "召开，请准时参加。"
end

local function sent(t, from)
  local out = {}
  for i, m in ipairs(t.sent()) do
    if i >= (from or 1) then out[#out + 1] = { to = m.to, at = m.at, key = m.key, text = m.text } end
  end
  return out
end

test("the jobs: Spring Festival invitations 10 days before it, the reminder 4 days before", function(t)
  local jobs = t.jobs() -- by name
  -- The festival is on 2027-02-06: the meeting on 2027-02-03 09:00.
  t.eq(jobs.spring_invite.spec, "on spring_festival -10 days 12:00")
  t.eq(jobs.spring_invite.next, "2027-01-27T12:00:00+08:00")
  t.eq(jobs.spring_remind.spec, "on spring_festival -4 days 19:00")
  t.eq(jobs.spring_remind.next, "2027-02-02T19:00:00+08:00")
  -- The sessions of the options are checked daily, when there are any.
  if #host.options.sessions > 0 then
    t.eq({ jobs.sessions_invite.spec, jobs.sessions_remind.spec }, { "0 12 * * *", "0 19 * * *" })
  else
    t.eq({ jobs.sessions_invite, jobs.sessions_remind }, {})
  end
end)

-- The demo county's options hold this session (all schools): then the
-- daily jobs send; with other options the test runs the same checks by hand.
local DEMO = { date = "2026-11-14 09:00", name = "期中家长会" }
local function by_job()
  local s = host.options.sessions[1]
  return #host.options.sessions == 1 and s.date == DEMO.date and s.name == DEMO.name and s.schools == nil
end

test("a session: each number invited once, a week before; reminded the day before", function(t)
  local opts = { sessions = { DEMO } }
  local function day(kind, today, n)
    t.advance("1h") -- to invite_time (12:00) or remind_time (19:00)
    if not by_job() then t.eq(sessions_run(kind, today, opts), n) end
  end
  t.clock.set("2026-11-06 11:00")
  t.fixture("county")
  day("invite", "2026-11-06", 0) -- eight days before: not yet
  t.eq(#t.sent(), 0)
  t.clock.set("2026-11-07 11:00")
  day("invite", "2026-11-07", 1)
  t.advance("1m")
  local date = "11月14日（周六）9:00"
  t.eq(sent(t), {
    -- The father of two: one SMS naming both.
    { to = "+8613700000012", at = "2026-11-07 12:00", key = "meeting:2026-11-14:12:invite",
      text = inv("张*明、张*红", "城关小学", date, "期中家长会") },
    { to = "+8613700000013", at = "2026-11-07 12:00", key = "meeting:2026-11-14:13:invite",
      text = inv("张*明", "城关小学", date, "期中家长会") },
    { to = "+8613700000019", at = "2026-11-07 12:00", key = "meeting:2026-11-14:19:invite",
      text = inv("刘*华", "河西小学", date, "期中家长会") },
    -- The grandmother caring for both: one SMS too.
    { to = "+8613900000011", at = "2026-11-07 12:00", key = "meeting:2026-11-14:11:invite",
      text = inv("张*明、张*红", "城关小学", date, "期中家长会") },
    { to = "+8613900000014", at = "2026-11-07 12:00", key = "meeting:2026-11-14:14:invite",
      text = inv("王*军", "城关小学", date, "期中家长会") },
    { to = "+8613900000018", at = "2026-11-07 12:00", key = "meeting:2026-11-14:18:invite",
      text = inv("欧**雪", "城关小学", date, "期中家长会") },
  })
  -- The daily check goes on until the day before: nothing twice.
  t.clock.set("2026-11-08 11:00")
  day("invite", "2026-11-08", 1)
  t.eq(invite(DEMO).new, 0)
  t.advance("1m")
  t.eq(#t.sent(), 6)
  -- The reminder, on the evening before.
  t.clock.set("2026-11-12 18:00")
  day("remind", "2026-11-12", 0)
  t.eq(#t.sent(), 6)
  t.clock.set("2026-11-13 18:00")
  day("remind", "2026-11-13", 1)
  t.advance("1m")
  local r = sent(t, 7)
  t.eq(#r, 6)
  t.eq(r[4], { to = "+8613900000011", at = "2026-11-13 19:00", key = "meeting:2026-11-14:11:remind",
               text = rem("张*明、张*红", "城关小学", date, "期中家长会") })
  t.eq(sessions_run("invite", "2026-11-14", opts), 0) -- the day itself: no invitation
end)

test("a session for one school only", function(t)
  t.clock.set("2026-11-19 12:00")
  t.fixture("county")
  local opts = { sessions = { { date = "2026-11-26 15:00", name = "家长开放日", schools = { "城关小学" } } } }
  t.eq(sessions_run("invite", "2026-11-19", opts), 1)
  t.advance("1m")
  local to = {}
  for i, m in ipairs(t.sent()) do to[i] = m.to end
  t.eq(to, { "+8613700000012", "+8613700000013", "+8613900000011", "+8613900000014", "+8613900000018" })
  t.eq(t.sent()[1].text, inv("张*明、张*红", "城关小学", "11月26日（周四）15:00", "家长开放日"))
end)

test("a session for parents or guardians only, in one school", function(t)
  t.clock.set("2026-11-20 12:00")
  t.fixture("county")
  local parents = { date = "2026-11-28 14:30", name = "家长学校", schools = { "河西小学" }, to = "parents",
                    id = "hx-parents" }
  local s = invite(parents)
  t.eq({ s.numbers, s.no_phone }, { 1, 0 })
  local guardians = { date = "2026-11-28 14:30", name = "家长学校", schools = { "河西小学" },
                      to = "guardians", id = "hx-guardians" }
  s = invite(guardians)
  t.eq({ s.numbers, s.no_phone }, { 0, 1 }) -- 孙建平 has no phone
  t.advance("1m")
  t.eq(sent(t), {
    { to = "+8613700000019", at = "2026-11-20 12:00", key = "meeting:hx-parents:19:invite",
      text = inv("刘*华", "河西小学", "11月28日（周六）14:30", "家长学校") },
  })
end)

test("mask_names = false and a county template", function(t)
  t.clock.set("2026-11-21 12:00")
  t.fixture("county")
  invite({ date = "2026-11-28 09:00", name = "家长会", schools = { "城关小学" }, to = "guardians" },
         { mask_names = false })
  -- The demo's template "meeting" uses {{child}} and {{date}} only.
  invite({ date = "2026-11-29 09:00", name = "家长会", schools = { "城关小学" }, to = "guardians" },
         { invite_template = "meeting" })
  t.advance("1m")
  local texts = {}
  for i, m in ipairs(t.sent()) do texts[i] = m.text end
  t.eq(texts[1], inv("张小明、张小红", "城关小学", "11月28日（周六）9:00", "家长会"))
  t.eq(texts[2], inv("王小军", "城关小学", "11月28日（周六）9:00", "家长会"))
  t.eq(texts[4], "张*明、张*红的家长您好：11月29日（周日）9:00在学校召开家长会，请准时参加。")
  t.eq(#texts, 6)
end)

test("a malformed session is refused, naming it", function(t)
  t.error(function() meeting_of({ date = "2026-11-31 09:00", name = "期中家长会" }, "sessions[1]") end,
          "sessions[1]: date: 2026-11-31 does not exist")
  t.error(function() meeting_of({ date = "2026-11-14", name = "期中家长会" }, "sessions[1]") end,
          'sessions[1]: date: expected "YYYY-MM-DD HH:MM", got 2026-11-14')
  t.error(function() meeting_of({ date = "2026-11-14 09:00" }, "sessions[2]") end, "sessions[2]: name")
  t.error(function() meeting_of({ date = "2026-11-14 09:00", name = "x", to = "teachers" }) end,
          'session: to: expected "all", "parents" or "guardians", got teachers')
end)

test("the Spring Festival meeting: invitations, then the reminder the day before", function(t)
  t.clock.set("2027-01-27 11:00")
  t.fixture("county")
  t.exec("UPDATE children SET status = 'graduated' WHERE id = 6")                 -- 欧阳春: not invited
  t.exec("UPDATE guardianships SET person_id = 11 WHERE child_id = 4 AND person_id = 15") -- 李秀英 for 刘小华 too
  t.advance("1h")
  local date = "2月3日（周三）9:00"
  t.eq(sent(t), {
    { to = "+8613700000012", at = "2027-01-27 12:00", key = "meeting:spring-2027:12:invite",
      text = inv("张*明、张*红", "城关小学", date, "春节家长会") },
    { to = "+8613700000013", at = "2027-01-27 12:00", key = "meeting:spring-2027:13:invite",
      text = inv("张*明", "城关小学", date, "春节家长会") },
    { to = "+8613700000019", at = "2027-01-27 12:00", key = "meeting:spring-2027:19:invite",
      text = inv("刘*华", "河西小学", date, "春节家长会") },
    { to = "+8613900000011", at = "2027-01-27 12:00", key = "meeting:spring-2027:11:invite",
      text = inv("张*明、张*红、刘*华", "城关小学、河西小学", date, "春节家长会") },
    { to = "+8613900000014", at = "2027-01-27 12:00", key = "meeting:spring-2027:14:invite",
      text = inv("王*军", "城关小学", date, "春节家长会") },
  })
  t.clock.set("2027-02-02 18:00")
  t.advance("1h")
  local r = sent(t, 6)
  t.eq(#r, 5)
  t.eq(r[1], { to = "+8613700000012", at = "2027-02-02 19:00", key = "meeting:spring-2027:12:remind",
               text = rem("张*明、张*红", "城关小学", date, "春节家长会") })
end)

test("keys name the person, or a hash of a number several people share, never the number", function(t)
  t.clock.set("2027-03-01 12:00")
  t.fixture("county")
  -- 张小明's mother 王丽 gives her mother-in-law 李秀英's number.
  t.exec("UPDATE people SET phone = '+8613900000011' WHERE id = 13")
  local mt = { date = "2027-03-06 09:00", name = "家长会", schools = { "城关小学" }, id = "m1" }
  t.eq(invite(mt).numbers, 4)
  t.eq(invite(mt).new, 0) -- the same keys: nothing twice
  t.advance("1m")
  local keys = {}
  for i, m in ipairs(t.sent()) do
    keys[i] = m.to .. " " .. m.key
    t.eq(m.key:find("%d%d%d%d%d%d%d"), nil, "no number in " .. m.key)
  end
  t.eq(keys, {
    "+8613700000012 meeting:m1:12:invite",
    "+8613900000011 meeting:m1:" .. host.crypto.sha256_hex("+8613900000011"):sub(1, 16) .. ":invite",
    "+8613900000014 meeting:m1:14:invite",
    "+8613900000018 meeting:m1:18:invite",
  })
  t.eq(t.sent()[2].text, inv("张*明、张*红", "城关小学", "3月6日（周六）9:00", "家长会"))
end)
