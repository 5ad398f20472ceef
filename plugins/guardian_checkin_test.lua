-- Tests of guardian_checkin: 'yizhan test guardian_checkin' (the demo
-- county's calendar). The fake clock starts at 2026-09-01 08:00 and carries
-- on from test to test, so each test takes a later month.
-- luacheck: globals test host checkin

-- The registry rows of tests/plugins/fixtures/county.sql, and 张小刚 in
-- 张小明's class, also in the care of his grandmother 李秀英.
local function fixture(t)
  t.fixture("county")
  t.exec([[INSERT INTO children(id, name, gender, birth_date, school_id, class, away, status)
           VALUES (7, '张小刚', 'M', '2017-04-02', 1, '三年级1班', 'both', 'active')]])
  t.exec([[INSERT INTO guardianships(child_id, person_id, relation, is_primary)
           VALUES (7, 11, 'paternal_grandparent', 1)]])
end

local function log(t, child, kind, on_date)
  t.exec("INSERT INTO contact_log(child_id, kind, on_date, logged_at) VALUES (?, ?, ?, 0)",
         child, kind, on_date)
end

local function list(teacher, n, names)
  return teacher .. "老师：本月请联系以下" .. n .. "位留守儿童的临时监护人：" .. names .. "。联系后请登记。"
end

local function again(teacher, n, names)
  return teacher .. "老师：本月尚有" .. n .. "位临时监护人未联系：" .. names .. "。请尽快联系并登记。"
end

local function sent(t) return t.sent({ "to", "at", "key", "text" }) end

test("the jobs: the list on the 1st, the reminder on the 15th", function(t)
  local jobs = t.jobs() -- by name
  t.eq(jobs.list.next, "2026-09-01T09:00:00+08:00")
  t.eq(jobs.remind.next, "2026-09-15T09:00:00+08:00")
  t.eq(jobs.term_start.spec, "on term.start 09:00")
end)

test("on the 1st each class teacher gets the guardians to contact", function(t)
  fixture(t)
  t.logs()
  t.advance("1h")
  t.eq(sent(t), {
    -- 李秀英 looks after two children of the class: named once.
    { to = "+8613800000001", at = "2026-09-01 09:00", key = "checkin:teacher:1:2026-09",
      text = list("王芳", 2, "李秀英（张*明、张*刚的祖父母）、欧阳春（欧**雪的亲属）") },
    { to = "+8613800000002", at = "2026-09-01 09:00", key = "checkin:teacher:2:2026-09",
      text = list("李强", 2, "李秀英（张*红的祖父母）、周桂兰（王*军的外祖父母）") },
  })
  local logs = table.concat(t.logs(), "\n")
  t.contains(logs, "teacher has no phone") -- 赵敏
  t.contains(logs, 'msg="guardian check-in lists" failed=0 guardians=4 no_phone=1 period=2026-09 teachers=2')
end)

test("a logged guardian contact takes the guardian off; the 15th lists who is left", function(t)
  t.clock.set("2026-10-01 08:00")
  fixture(t)
  log(t, 6, "guardian_contact", "2026-10-01") -- 欧阳春: off
  log(t, 2, "guardian_contact", "2026-09-28") -- last month's: still listed
  log(t, 3, "letter", "2026-10-01")           -- a letter is not a guardian contact
  t.advance("1h")
  t.eq(sent(t), {
    { to = "+8613800000001", at = "2026-10-01 09:00", key = "checkin:teacher:1:2026-10",
      text = list("王芳", 1, "李秀英（张*明、张*刚的祖父母）") },
    { to = "+8613800000002", at = "2026-10-01 09:00", key = "checkin:teacher:2:2026-10",
      text = list("李强", 2, "李秀英（张*红的祖父母）、周桂兰（王*军的外祖父母）") },
  })
  -- 李秀英 is talked with about 张小刚: off both lists, for all three.
  log(t, 7, "guardian_contact", "2026-10-10")
  t.clock.set("2026-10-15 08:00")
  t.advance("1h")
  local s = sent(t)
  t.eq(#s, 3) -- 王芳 has contacted all of hers: nothing for her
  t.eq(s[3], { to = "+8613800000002", at = "2026-10-15 09:00", key = "checkin:teacher:2:2026-10:remind",
               text = again("李强", 1, "周桂兰（王*军的外祖父母）") })
end)

test("a rerun of the month sends nothing twice", function(t)
  t.clock.set("2026-11-01 08:00")
  fixture(t)
  t.advance("1h")
  t.eq(#t.sent(), 2)
  t.eq(checkin("2026-11").teachers, 2)
  t.advance("14d")
  t.eq(#t.sent(), 4)
  checkin("2026-11")
  checkin("2026-11", true)
  t.advance("1h")
  local keys = {}
  for i, m in ipairs(t.sent()) do keys[i] = m.key end
  t.eq(keys, { "checkin:teacher:1:2026-11", "checkin:teacher:2:2026-11",
               "checkin:teacher:1:2026-11:remind", "checkin:teacher:2:2026-11:remind" })
end)

test("mask_names = false puts the children's full names in the text", function(t)
  t.clock.set("2026-12-01 08:00")
  fixture(t)
  checkin("2026-12", false, { mask_names = false })
  t.advance("1m")
  t.eq(t.sent()[1].text, list("王芳", 2, "李秀英（张小明、张小刚的祖父母）、欧阳春（欧阳小雪的亲属）"))
end)

test("children who returned or graduated are not on the list", function(t)
  t.clock.set("2027-01-01 08:00")
  fixture(t)
  t.exec("UPDATE children SET status = 'returned' WHERE id = 1")
  t.exec("UPDATE children SET status = 'graduated' WHERE id = 7")
  t.exec("UPDATE children SET status = 'transferred' WHERE id IN (2, 3)")
  t.advance("1h")
  t.eq(sent(t), {
    { to = "+8613800000001", at = "2027-01-01 09:00", key = "checkin:teacher:1:2027-01",
      text = list("王芳", 1, "欧阳春（欧**雪的亲属）") },
  })
end)

test("nothing in the winter holiday", function(t)
  t.clock.set("2027-02-01 08:00")
  fixture(t)
  t.logs()
  t.advance("1h")
  t.clock.set("2027-02-15 08:00")
  t.advance("1h")
  t.eq(#t.sent(), 0)
  t.contains(table.concat(t.logs(), "\n"), "not in a term of the school calendar")
end)

test("a term starting after the 1st gets the month's lists on its first day (or the days after)", function(t)
  -- 2027春 starts on Monday 22 February; the PC is off until Wednesday.
  t.clock.set("2027-02-24 10:00")
  fixture(t)
  t.logs()
  t.advance("1m")
  t.eq(sent(t), {
    { to = "+8613800000001", at = "2027-02-24 10:00", key = "checkin:teacher:1:2027-02",
      text = list("王芳", 2, "李秀英（张*明、张*刚的祖父母）、欧阳春（欧**雪的亲属）") },
    { to = "+8613800000002", at = "2027-02-24 10:00", key = "checkin:teacher:2:2027-02",
      text = list("李强", 2, "李秀英（张*红的祖父母）、周桂兰（王*军的外祖父母）") },
  })
  t.contains(table.concat(t.logs(), "\n"), "a term starts after the 1st")
  checkin("2027-02") -- the keys hold
  t.advance("1m")
  t.eq(#t.sent(), 2)
end)

test("a long list names max_names guardians, then 等N位, in a few SMS parts", function(t)
  t.clock.set("2027-03-01 08:00")
  fixture(t)
  local names = { "黄秀兰", "杨桂英", "吴玉兰", "何淑珍", "郭凤英", "马秀珍", "罗桂兰", "梁玉珍", "宋秀英", "郑淑英" }
  for i, name in ipairs(names) do
    local _, child = t.exec([[INSERT INTO children(name, gender, birth_date, school_id, class, away)
                              VALUES (?, 'F', '2017-05-05', 1, '三年级2班', 'both')]], "孙小" .. i)
    local _, person = t.exec("INSERT INTO people(ukey, kind, name, phone) VALUES (?, 'guardian', ?, NULL)",
                             "x" .. i, name)
    t.exec([[INSERT INTO guardianships(child_id, person_id, relation, is_primary)
             VALUES (?, ?, 'maternal_grandparent', 1)]], child, person)
  end
  t.advance("1h")
  local m = t.sent()[2]
  t.eq(m.to, "+8613800000002")
  t.eq(m.key, "checkin:teacher:2:2027-03")
  t.eq(m.text, list("李强", 12, "李秀英（张*红的祖父母）、周桂兰（王*军的外祖父母）、黄秀兰（孙*1的外祖父母）、"
                      .. "杨桂英（孙*2的外祖父母）、吴玉兰（孙*3的外祖父母）、何淑珍（孙*4的外祖父母）等12位"))
  t.ok(m.parts <= 3, "at most 3 SMS parts, got " .. m.parts)
end)

test("a guardian contacted about one child is off the list for all the children in her care", function(t)
  t.clock.set("2027-04-01 08:00")
  fixture(t)
  -- 李秀英 cares for 张小明 and 张小刚 (三年级1班) and 张小红 (三年级2班).
  log(t, 7, "guardian_contact", "2027-04-01")
  t.advance("1h")
  t.eq(sent(t), {
    { to = "+8613800000001", at = "2027-04-01 09:00", key = "checkin:teacher:1:2027-04",
      text = list("王芳", 1, "欧阳春（欧**雪的亲属）") },
    { to = "+8613800000002", at = "2027-04-01 09:00", key = "checkin:teacher:2:2027-04",
      text = list("李强", 1, "周桂兰（王*军的外祖父母）") },
  })
  -- A contact logged for a child of whom she is not the primary guardian
  -- does not count for her.
  t.clock.set("2027-05-01 08:00")
  t.exec("UPDATE guardianships SET is_primary = 0 WHERE child_id = 7")
  t.exec("INSERT INTO guardianships(child_id, person_id, relation, is_primary) VALUES (7, 13, 'mother', 1)")
  log(t, 7, "guardian_contact", "2027-05-01")
  t.advance("1h")
  t.eq(sent(t)[3].text, list("王芳", 2, "李秀英（张*明的祖父母）、欧阳春（欧**雪的亲属）"))
end)
