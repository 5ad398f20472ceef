-- Tests of visit_schedule: 'yizhan test visit_schedule' on the demo
-- county's calendar (2026秋: start 2026-09-01, mid 2026-11-09, end
-- 2027-01-22). The fake clock starts 2026-09-01 08:00 and carries on from
-- test to test; each test's rows are rolled back after it.
-- luacheck: globals test host options visit_day

-- Two schools: 城关小学 with a class teacher (王丽, 三(1)班), a head and a
-- deputy, and a class nobody heads yet (四(2)班); 河口小学 whose class
-- teacher has no phone and which has no head.
local function fixtures(t)
  t.exec([[INSERT INTO schools(id, name, town, enrolment) VALUES
           (1, '城关小学', '城关镇', 800), (2, '河口小学', '河口镇', 300)]])
  t.exec([[INSERT INTO people(id, ukey, kind, name, phone, school_id, class, role) VALUES
    (10, 'teacher:王丽', 'teacher', '王丽', '+8613800000010', 1, '三(1)班', 'teacher'),
    (11, 'teacher:李强', 'teacher', '李强', '+8613800000011', 1, NULL, 'head'),
    (12, 'teacher:赵敏', 'teacher', '赵敏', '+8613800000012', 1, NULL, 'deputy'),
    (13, 'teacher:陈静', 'teacher', '陈静', NULL, 2, '一(1)班', 'teacher')]])
  t.exec([[INSERT INTO children(id, name, gender, birth_date, school_id, class, away, status) VALUES
    (1, '张小明', 'M', '2017-03-05', 1, '三(1)班', 'both', 'active'),
    (2, '李红', 'F', '2017-06-01', 1, '三(1)班', 'father', 'active'),
    (3, '王芳芳', 'F', '2016-01-01', 1, '四(2)班', 'mother', 'active'),
    (4, '刘洋', 'M', '2017-01-01', 1, '三(1)班', 'both', 'returned'),
    (5, '周杰', 'M', '2018-02-02', 2, '一(1)班', 'both', 'active')]])
end

local function visits()
  local rows = {}
  for r in host.db.rows("SELECT child_id, visitor_id, kind, term, due, done FROM visits"
                        .. " ORDER BY child_id, due") do
    rows[#rows + 1] = r
  end
  return rows
end

local function by(list, field)
  local out = {}
  for _, item in ipairs(list) do out[item[field]] = item end
  return out
end

-- Visits whose reminder (or escalation) went: told = 1; or for which there
-- was nobody to tell: told = 0.
local function notice_count(kind, told)
  return host.db.one("SELECT count(*) AS n FROM visit_notices WHERE kind = ? AND told = ?",
                     kind, told == nil and 1 or told).n
end

test("the term's three visits are planned for every active child, with the class teacher", function(t)
  fixtures(t)
  t.advance("1d") -- the catch-up at start, then the daily run of 2026-09-02
  local rows = visits()
  t.eq(#rows, 12, "4 active children x 3 visits (刘洋 has returned home)")
  t.eq(rows[1], { child_id = 1, visitor_id = 10, kind = "term_start", term = "2026秋", due = "2026-09-15" })
  t.eq(rows[2], { child_id = 1, visitor_id = 10, kind = "mid_term", term = "2026秋", due = "2026-11-09" })
  t.eq(rows[3], { child_id = 1, visitor_id = 10, kind = "term_end", term = "2026秋", due = "2027-01-22" })
  t.eq(rows[7], { child_id = 3, kind = "term_start", term = "2026秋", due = "2026-09-15" },
       "四(2)班 has no class teacher: no visitor yet")
  t.eq(rows[10].visitor_id, 13)
  local log = table.concat(t.logs(), "\n")
  t.contains(log, 'msg="visits planned" term=2026秋 visits=12')
  t.contains(log, 'msg="visits without a class teacher" classes="城关小学 四(2)班" term=2026秋')
  t.eq(#t.sent(), 0, "nothing is due within three days yet")
end)

test("the plan runs on the first day of each term", function(t)
  local jobs = by(t.jobs(), "name")
  t.eq(jobs.plan_term.spec, "on term.start 07:00")
  t.eq(jobs.plan_term.next, "2027-02-22T07:00:00+08:00")
  t.eq(jobs.daily.spec, "0 8 * * *")
end)

test("the class teacher gets one digest three days before the term-start visits fall due", function(t)
  fixtures(t)
  t.advance("9d") -- to 2026-09-11 08:00: the visits are planned, none due within 3 days
  t.eq(#visits(), 12)
  t.eq(#t.sent(), 0)
  t.logs()
  t.advance("1d") -- 2026-09-12 08:00: due on the 15th
  t.advance("1m")
  local sent = t.sent()
  t.eq(#sent, 1, "one digest: 陈静 has no phone, 四(2)班 has no teacher")
  t.eq(sent[1].to, "+8613800000010")
  t.eq(sent[1].text, "王丽老师您好：您有2次留守儿童家访即将到期，开学家访（9月15日前）：张*明、李*。"
                     .. "请按时家访，完成后及时登记。")
  t.eq(sent[1].key, "visit:remind:10:2026-09-12")
  t.eq(sent[1].job, "daily")
  t.eq(sent[1].at, "2026-09-12 08:00")
  local log = table.concat(t.logs(), "\n")
  t.contains(log, 'msg="visit run" date=2026-09-12 escalated_heads=0 escalated_visits=0 no_teacher=1'
                  .. ' reminded_teachers=1 reminded_visits=2 schools_without_head=0 skipped_no_phone=1')
  t.contains(log, 'msg="visits due but the class has no teacher to remind" class="城关小学 四(2)班"'
                  .. ' date=2026-09-12 visits=1')
  t.contains(log, 'msg="visits due but the class teacher has no phone" date=2026-09-12 person=13 visits=1')
  t.eq(notice_count("remind"), 2)
  t.eq(notice_count("remind", 0), 0, "王芳芳 (no teacher) and 周杰 (teacher without a phone) wait")
  -- A rerun the same day sends nothing twice and says nothing twice.
  visit_day("2026-09-12")
  t.eq(table.concat(t.logs(), "\n"):find("visits due but", 1, true), nil)
  t.advance("1d") -- each visit is reminded once; who waits is said again that day, once
  t.advance("1m")
  t.eq(#t.sent(), 1)
  t.contains(table.concat(t.logs(), "\n"), 'class="城关小学 四(2)班" date=2026-09-13 visits=1')
end)

test("a rerun the same day sends nothing twice", function(t)
  fixtures(t)
  visit_day("2026-09-01")
  visit_day("2026-09-12")
  visit_day("2026-09-12")
  -- Even with the notices lost, the key holds: the digest is not queued again.
  t.exec("DELETE FROM visit_notices")
  visit_day("2026-09-12")
  t.advance("1m")
  local sent = t.sent()
  t.eq(#sent, 1)
  t.eq(sent[1].key, "visit:remind:10:2026-09-12")
  t.eq(t.one("SELECT count(*) AS n FROM yz_outbox WHERE key LIKE 'visit:%'").n, 1)
end)

test("a visit marked done is neither reminded nor escalated", function(t)
  fixtures(t)
  visit_day("2026-09-01")
  local status, out = t.command("registry visit", { "done", "张小明", "--date", "2026-09-10" })
  t.eq(status, 0)
  t.contains(out, "term_start visit")
  visit_day("2026-09-12")
  t.advance("1m")
  local sent = t.sent()
  t.eq(#sent, 1)
  t.contains(sent[1].text, "您有1次留守儿童家访即将到期，开学家访（9月15日前）：李*。")
  -- The others are done before they are overdue: no escalation at all.
  for _, child in ipairs({ "李红", "王芳芳", "周杰" }) do
    t.eq((t.command("registry visit", { "done", child })), 0)
  end
  visit_day("2026-09-22")
  visit_day("2026-09-30")
  t.advance("1m")
  t.eq(#t.sent(), 1)
  t.eq(notice_count("escalate"), 0)
end)

test("visits overdue seven days go to the head and the deputy, once", function(t)
  fixtures(t)
  visit_day("2026-09-01")
  t.clock.set("2026-09-22 07:50") -- the run missed on the 21st catches up first
  t.advance("15m")
  local sent = t.sent()
  t.eq(#sent, 2)
  t.eq(sent[1].to, "+8613800000011")
  t.eq(sent[1].text, "李强您好：城关小学有3次留守儿童家访逾期7天以上仍未完成："
                     .. "三(1)班（王丽）2次、四(2)班（未定班主任）1次。请督促落实。")
  t.eq(sent[1].key, "visit:escalate:11:2026-09-22")
  t.eq(sent[1].at, "2026-09-22 08:00")
  t.eq(sent[2].to, "+8613800000012")
  t.eq(sent[2].key, "visit:escalate:12:2026-09-22")
  local log = table.concat(t.logs(), "\n")
  t.contains(log, 'msg="overdue visits but no head or deputy with a phone" school=河口小学 visits=1')
  t.contains(log, 'msg="visit run" date=2026-09-22 escalated_heads=2 escalated_visits=3 no_teacher=0'
                  .. ' reminded_teachers=0 reminded_visits=0 schools_without_head=1 skipped_no_phone=0')
  t.eq(notice_count("escalate"), 3)
  t.eq(notice_count("escalate", 0), 1, "周杰's: 河口小学 has no head")
  -- The next mornings: nothing new is overdue, nothing is said again, and
  -- 河口小学's missing head is not logged every day.
  t.advance("2d")
  t.eq(#t.sent(), 2)
  t.eq(table.concat(t.logs(), "\n"):find("no head", 1, true), nil)
  -- Marked done late: it stays done, and nothing more is said of it.
  t.exec("UPDATE visits SET done = '2026-09-25' WHERE child_id = 1 AND kind = 'term_start'")
  t.advance("1d")
  t.eq(#t.sent(), 2)
end)

test("mask_names = false puts the children's full names in the digest", function(t)
  fixtures(t)
  local opts = { mask_names = false } -- the rest from the options in force
  visit_day("2026-09-01", opts)
  visit_day("2026-09-12", opts)
  t.advance("1m")
  local sent = t.sent()
  t.eq(#sent, 1)
  t.contains(sent[1].text, "开学家访（9月15日前）：张小明、李红。")
end)

test("a long digest lists five names, then the count", function(t)
  fixtures(t)
  for i = 1, 6 do
    t.exec("INSERT INTO children(name, gender, birth_date, school_id, class, away)"
           .. " VALUES (?, 'F', ?, 1, '三(1)班', 'both')",
           "孙" .. ({ "一", "二", "三", "四", "五", "六" })[i] .. "妹", "2017-01-0" .. i)
  end
  visit_day("2026-09-01")
  t.exec("UPDATE visits SET done = '2026-09-15' WHERE kind = 'term_start'")
  visit_day("2026-11-06")
  t.advance("1m")
  local sent = t.sent()
  t.eq(#sent, 1)
  t.eq(sent[1].text, "王丽老师您好：您有8次留守儿童家访即将到期，期中家访（11月9日前）："
                     .. "张*明、李*、孙*妹、孙*妹、孙*妹等8人。请按时家访，完成后及时登记。")
  t.eq(sent[1].key, "visit:remind:10:2026-11-06")
end)

test("a child added later gets the visits still to come, and a new class teacher takes over", function(t)
  fixtures(t)
  visit_day("2026-09-01")
  local _, id = t.exec("INSERT INTO children(name, gender, birth_date, school_id, class, away) VALUES"
                       .. " ('吴小雨', 'F', '2017-09-09', 1, '四(2)班', 'mother')")
  visit_day("2026-09-20") -- the term-start visit is past due: not created
  local mine = {}
  for r in host.db.rows("SELECT kind, due, visitor_id FROM visits WHERE child_id = ? ORDER BY due", id) do
    mine[#mine + 1] = r
  end
  t.eq(mine, { { kind = "mid_term", due = "2026-11-09" }, { kind = "term_end", due = "2027-01-22" } })
  -- 四(2)班 gets a class teacher: the open visits are hers from the next run.
  t.exec([[INSERT INTO people(id, ukey, kind, name, phone, school_id, class, role) VALUES
           (14, 'teacher:孙丽', 'teacher', '孙丽', '+8613800000014', 1, '四(2)班', 'teacher')]])
  visit_day("2026-09-21")
  t.eq(host.db.one("SELECT count(*) AS n FROM visits WHERE visitor_id = 14").n, 5,
       "王芳芳's three and 吴小雨's two")
  t.eq(host.db.one("SELECT count(*) AS n FROM visits WHERE visitor_id IS NULL").n, 0)
end)

test("the registry's child_added event plans that child at once", function(t)
  fixtures(t)
  local _, id = t.exec("INSERT INTO children(name, gender, birth_date, school_id, class, away) VALUES"
                       .. " ('郑小龙', 'M', '2017-04-04', 1, '三(1)班', 'father')")
  host.emit("registry.child_added", { child = id, school = 1, class = "三(1)班" })
  t.advance("1s")
  local kinds = {}
  for r in host.db.rows("SELECT kind FROM visits WHERE child_id = ? AND visitor_id = 10 ORDER BY due", id) do
    kinds[#kinds + 1] = r.kind
  end
  t.eq(t.now():sub(1, 10), "2026-09-25")
  t.eq(kinds, { "mid_term", "term_end" }, "the visits still to come")
  t.eq(host.db.one("SELECT count(*) AS n FROM visits WHERE child_id <> ?", id).n, 0,
       "only that child was planned")
end)

test("a child back to active (a change of status) is planned at once", function(t)
  t.clock.set("2026-10-10 10:00")
  t.advance("1s") -- the morning run missed, caught up before the registry rows
  fixtures(t)
  -- 刘洋 had returned home; the term survey finds him left behind again.
  local status, _, err = t.command("registry confirm", { "#4", "--status", "active" })
  t.eq(status, 0, err)
  t.advance("1s")
  local kinds = {}
  for r in host.db.rows("SELECT kind, visitor_id FROM visits WHERE child_id = 4 ORDER BY due") do
    kinds[#kinds + 1] = r.kind .. " " .. r.visitor_id
  end
  t.eq(kinds, { "mid_term 10", "term_end 10" }, "the visits still to come, with the class teacher")
  -- A child who leaves is not planned.
  t.eq((t.command("registry confirm", { "#1", "--status", "returned" })), 0)
  t.advance("1s")
  t.eq(host.db.one("SELECT count(*) AS n FROM visits WHERE child_id = 1").n, 0)
end)

test("an import too large for an event per child plans every child and reassigns classes", function(t)
  t.clock.set("2026-10-12 10:00")
  t.advance("1s") -- the morning run missed, caught up before the registry rows
  fixtures(t)
  visit_day("2026-10-12")
  -- The import moved 张小明 to 四(2)班, which now has a class teacher.
  t.exec("UPDATE children SET class = '四(2)班' WHERE id = 1")
  t.exec([[INSERT INTO people(id, ukey, kind, name, phone, school_id, class, role) VALUES
           (14, 'teacher:孙丽', 'teacher', '孙丽', '+8613800000014', 1, '四(2)班', 'teacher')]])
  t.exec("UPDATE children SET status = 'active' WHERE id = 4")
  host.emit("registry.imported", { kind = "children", added = 0, changed = 6000, left = 0, each = false })
  t.advance("1s")
  local rows = {}
  for r in host.db.rows("SELECT child_id, kind, visitor_id FROM visits"
                        .. " WHERE child_id IN (1, 3, 4) ORDER BY child_id, due") do
    rows[#rows + 1] = r.child_id .. " " .. r.kind .. " " .. tostring(r.visitor_id)
  end
  t.eq(rows, { "1 mid_term 14", "1 term_end 14", "3 mid_term 14", "3 term_end 14",
               "4 mid_term 10", "4 term_end 10" })
end)

test("a visit with nobody to tell yet is reminded once a teacher with a phone is there", function(t)
  fixtures(t)
  visit_day("2026-09-01")
  visit_day("2026-09-12") -- 王丽's digest; 四(2)班 has no teacher, 陈静 no phone
  t.eq(notice_count("remind"), 2)
  -- The registry gets 四(2)班's teacher and 陈静's phone the same day.
  t.exec([[INSERT INTO people(id, ukey, kind, name, phone, school_id, class, role) VALUES
           (14, 'teacher:孙丽', 'teacher', '孙丽', '+8613800000014', 1, '四(2)班', 'teacher')]])
  t.exec("UPDATE people SET phone = '+8613800000013' WHERE id = 13")
  visit_day("2026-09-13")
  t.advance("1m")
  local got = {}
  for i, m in ipairs(t.sent()) do got[i] = m.key .. " " .. m.text end
  t.eq(got, {
    "visit:remind:10:2026-09-12 王丽老师您好：您有2次留守儿童家访即将到期，开学家访（9月15日前）：张*明、李*。"
      .. "请按时家访，完成后及时登记。",
    "visit:remind:13:2026-09-13 陈静老师您好：您有1次留守儿童家访即将到期，开学家访（9月15日前）：周*。"
      .. "请按时家访，完成后及时登记。",
    "visit:remind:14:2026-09-13 孙丽老师您好：您有1次留守儿童家访即将到期，开学家访（9月15日前）：王*芳。"
      .. "请按时家访，完成后及时登记。",
  })
  t.eq(notice_count("remind"), 4)
end)
