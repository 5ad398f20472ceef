-- Tests of letter_reminder: 'yizhan test letter_reminder' (the demo
-- county's calendar: terms 2026秋 from 2026-09-01 to 2027-01-22 and 2027春
-- from 2027-02-22). The fake clock starts at 2026-09-01 08:00 and carries on
-- from test to test, so each test takes a later month.
-- luacheck: globals test host remind_teachers remind_guardians

-- The registry rows: tests/plugins/fixtures/county.sql (t.fixture("county")).

local function log(t, child, kind, on_date)
  t.exec("INSERT INTO contact_log(child_id, kind, on_date, logged_at) VALUES (?, ?, ?, 0)",
         child, kind, on_date)
end

local function digest(name, n, names)
  return name .. "老师：本月尚有" .. n .. "名留守儿童未给父母写信或打电话：" .. names
    .. "。请督促孩子与父母联系。"
end

local function nudge(guardian, child, parent)
  return guardian .. "您好：" .. child .. "本月还没有给在外务工的" .. parent
    .. "写信或打电话，请督促孩子和" .. parent .. "联系。"
end

-- The messages that left, as { to, at, key, text } in the order they left.
local function sent(t) return t.sent({ "to", "at", "key", "text" }) end

test("the jobs: the 1st at 09:00 for teachers, the 20th at 18:00 for guardians", function(t)
  local jobs = t.jobs() -- by name
  t.eq(jobs.teachers.spec, "0 9 1 * *")
  t.eq(jobs.teachers.next, "2026-09-01T09:00:00+08:00")
  t.eq(jobs.guardians.spec, "0 18 20 * *")
  t.eq(jobs.guardians.next, "2026-09-20T18:00:00+08:00")
  -- A term starting after the 1st of its month: the digest on its first day.
  t.eq(jobs.term_start.spec, "on term.start 09:00")
end)

test("on the 1st each proxy parent or class teacher gets one digest", function(t)
  t.fixture("county")
  t.logs()
  t.advance("1h")
  t.eq(sent(t), {
    { to = "+8613800000001", at = "2026-09-01 09:00", key = "letter:teacher:1:2026-09",
      text = digest("王芳", 2, "张*明、欧**雪") },
    { to = "+8613800000002", at = "2026-09-01 09:00", key = "letter:teacher:2:2026-09",
      text = digest("李强", 1, "张*红") },
    -- 王小军 has a proxy parent: she is reminded, not his class teacher.
    { to = "+8613800000004", at = "2026-09-01 09:00", key = "letter:teacher:4:2026-09",
      text = digest("陈静", 1, "王*军") },
  })
  local logs = table.concat(t.logs(), "\n")
  -- 赵敏 (河西小学) has no phone: counted and logged, not sent.
  t.contains(logs, "teacher has no phone")
  t.contains(logs, 'msg="letter reminders to teachers" children=4 failed=0 no_phone=1 no_teacher=0'
                   .. " period=2026-09 teachers=3")
end)

test("a letter or call logged this month takes the child off the digest", function(t)
  t.clock.set("2026-10-01 08:00")
  t.fixture("county")
  log(t, 1, "letter", "2026-10-01") -- this month: off
  log(t, 6, "call", "2026-10-01")   -- a call counts as well
  log(t, 2, "letter", "2026-09-30") -- last month: still reminded
  log(t, 3, "talk", "2026-10-01")   -- a talk is not a letter
  t.advance("1h")
  t.eq(sent(t), {
    { to = "+8613800000002", at = "2026-10-01 09:00", key = "letter:teacher:2:2026-10",
      text = digest("李强", 1, "张*红") },
    { to = "+8613800000004", at = "2026-10-01 09:00", key = "letter:teacher:4:2026-10",
      text = digest("陈静", 1, "王*军") },
  })
end)

test("on the 20th the guardian of each child still missing is reminded", function(t)
  t.clock.set("2026-10-20 12:00")
  t.fixture("county")
  log(t, 1, "letter", "2026-10-12")
  t.advance("6h")
  t.eq(sent(t), {
    { to = "+8613900000011", at = "2026-10-20 18:00", key = "letter:guardian:2:2026-10",
      text = nudge("李秀英", "张*红", "爸爸妈妈") },
    { to = "+8613900000014", at = "2026-10-20 18:00", key = "letter:guardian:3:2026-10",
      text = nudge("周桂兰", "王*军", "爸爸") },
    { to = "+8613900000018", at = "2026-10-20 18:00", key = "letter:guardian:6:2026-10",
      text = nudge("欧阳春", "欧**雪", "妈妈") },
  })
  -- 刘小华's guardian has no phone: counted.
  t.contains(table.concat(t.logs(), "\n"), "guardians=3 no_guardian=0 no_phone=1 period=2026-10")
end)

test("a rerun of the month sends nothing twice", function(t)
  t.clock.set("2026-11-01 08:00")
  t.fixture("county")
  t.advance("1h")
  t.eq(#t.sent(), 3)
  t.eq(remind_teachers("2026-11").teachers, 3) -- the same messages, already there
  t.advance("465h")                            -- 2026-11-20 18:00
  t.eq(#t.sent(), 7)
  remind_guardians("2026-11")
  remind_teachers("2026-11")
  t.advance("1h")
  local keys = {}
  for _, m in ipairs(t.sent()) do keys[#keys + 1] = m.key end
  t.eq(keys, { "letter:teacher:1:2026-11", "letter:teacher:2:2026-11", "letter:teacher:4:2026-11",
               "letter:guardian:1:2026-11", "letter:guardian:2:2026-11", "letter:guardian:3:2026-11",
               "letter:guardian:6:2026-11" })
  t.eq(t.one("SELECT count(*) AS n FROM yz_outbox").n, 7)
end)

test("mask_names = false puts full names in the text", function(t)
  t.clock.set("2026-12-01 08:00")
  t.fixture("county")
  remind_teachers("2026-12", { mask_names = false })
  remind_guardians("2026-12", { mask_names = false })
  t.advance("2m")
  local texts = {}
  for _, m in ipairs(t.sent()) do texts[#texts + 1] = m.text end
  t.eq(texts, {
    digest("王芳", 2, "张小明、欧阳小雪"), digest("李强", 1, "张小红"), digest("陈静", 1, "王小军"),
    nudge("李秀英", "张小明", "爸爸妈妈"), nudge("李秀英", "张小红", "爸爸妈妈"),
    nudge("周桂兰", "王小军", "爸爸"), nudge("欧阳春", "欧阳小雪", "妈妈"),
  })
  -- The 09:00 job finds this month's digests already queued.
  t.advance("1h")
  t.eq(#t.sent(), 7)
end)

test("a child who returned or graduated, or whose pairing ended, is handled", function(t)
  t.clock.set("2027-01-01 08:00") -- New Year's Day, inside the autumn term
  t.fixture("county")
  t.exec("UPDATE children SET status = 'returned' WHERE id = 1")
  t.exec("UPDATE children SET status = 'graduated' WHERE id = 6")
  t.exec([[UPDATE pairings SET "until" = '2026-12-31' WHERE id = 1]])
  t.advance("1h")
  -- 王芳 has no child left to remind; 王小军 is back with his class teacher.
  t.eq(sent(t), {
    { to = "+8613800000002", at = "2027-01-01 09:00", key = "letter:teacher:2:2027-01",
      text = digest("李强", 2, "张*红、王*军") },
  })
  t.clock.set("2027-01-20 17:00")
  t.advance("1h")
  local to = {}
  for i, m in ipairs(t.sent()) do to[i] = m.to .. " " .. m.key end
  t.eq(to, { "+8613800000002 letter:teacher:2:2027-01",
             "+8613900000011 letter:guardian:2:2027-01",
             "+8613900000014 letter:guardian:3:2027-01" })
end)

test("nothing in the winter holiday; the spring term's first month is reminded on its first day", function(t)
  t.clock.set("2027-02-01 08:00")
  t.fixture("county")
  t.logs()
  t.advance("1h")
  t.eq(#t.sent(), 0)
  t.contains(table.concat(t.logs(), "\n"), "not in a term of the school calendar")
  t.clock.set("2027-02-20 17:00")
  t.advance("2h")
  t.eq(#t.sent(), 0)
  -- 2027春 starts on Monday 22 February: February's digest goes that
  -- morning, not in March.
  t.clock.set("2027-02-22 08:00")
  t.advance("1h")
  local keys = {}
  for i, m in ipairs(t.sent()) do keys[i] = m.at .. " " .. m.key end
  t.eq(keys, { "2027-02-22 09:00 letter:teacher:1:2027-02", "2027-02-22 09:00 letter:teacher:2:2027-02",
               "2027-02-22 09:00 letter:teacher:4:2027-02" })
  t.contains(table.concat(t.logs(), "\n"), "period=2027-02 teachers=3")
  t.clock.set("2027-03-01 08:00")
  t.advance("1h")
  t.eq(#t.sent(), 6)
  t.eq(t.sent()[4].at, "2027-03-01 09:00")
  t.eq(t.sent()[4].key, "letter:teacher:1:2027-03")
end)

test("a long class is listed up to max_names, then 等N人, in a few SMS parts", function(t)
  t.clock.set("2027-04-01 08:00")
  t.fixture("county")
  local surnames = { "黄", "杨", "吴", "何", "郭", "马", "罗", "梁", "宋", "郑", "谢", "韩" }
  for i = 1, 24 do
    t.exec([[INSERT INTO children(name, gender, birth_date, school_id, class, away)
             VALUES (?, 'M', '2017-01-01', 1, '三年级2班', 'both')]],
           surnames[(i - 1) % #surnames + 1] .. "小" .. (i <= 12 and "龙" or "虎"))
  end
  t.advance("1h")
  local m = t.sent()[2]
  t.eq(m.to, "+8613800000002")
  t.contains(m.text, "本月尚有25名留守儿童")
  t.contains(m.text, "等25人。请督促")
  local _, commas = m.text:gsub("、", "")
  t.eq(commas, 9) -- ten names
  t.ok(m.parts <= 3, "at most 3 SMS parts, got " .. m.parts)
  -- Fewer with max_names.
  remind_teachers("2027-05", { max_names = 2 }, "2027-05-01")
  t.advance("1m")
  t.eq(t.sent()[5].text, digest("李强", 25, "张*红、黄*龙等25人"))
end)

test("a template instead of text, when the config names one", function(t)
  t.clock.set("2027-05-02 08:00")
  t.fixture("county")
  -- The configuration's "meeting" template needs a {{date}} the policy does
  -- not give: a refusal for each, logged.
  local s = remind_guardians("2027-05", { guardian_template = "meeting" })
  t.eq(s.guardians, 0)
  t.eq(s.failed, 4)
  t.contains(table.concat(t.logs(), "\n"), "needs parameter 'date'")
end)

test("a pairing that ends later this term is still running", function(t)
  t.clock.set("2027-06-01 08:00")
  t.fixture("county")
  t.exec([[UPDATE pairings SET "until" = '2027-06-30' WHERE id = 1]])
  t.advance("1h")
  local to = {}
  for i, m in ipairs(t.sent()) do to[i] = m.key end
  -- 王小军's proxy parent 陈静 (person 4) is reminded, not his class teacher.
  t.eq(to, { "letter:teacher:1:2027-06", "letter:teacher:2:2027-06", "letter:teacher:4:2027-06" })
  t.eq(t.sent()[3].text, digest("陈静", 1, "王*军"))
  -- One that ends on the day does not run any more.
  t.exec([[UPDATE pairings SET "until" = '2027-07-01' WHERE id = 1]])
  remind_teachers("2027-07", nil, "2027-07-01")
  t.advance("1m")
  t.eq(t.sent()[5].text, digest("李强", 2, "张*红、王*军"))
end)

test("a calendar with no term left is said in the log", function(t)
  t.clock.set("2027-08-01 08:00")
  t.fixture("county")
  t.logs()
  t.advance("1h")
  t.eq(#t.sent(), 0)
  t.contains(table.concat(t.logs(), "\n"), "the school calendar has no term after this day")
end)
