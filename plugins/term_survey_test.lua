-- Tests of term_survey, run by 'yizhan test term_survey' on the demo
-- county's calendar (2026秋 starts on 2026-09-01, 2027春 on 2027-02-22). The
-- fake clock starts on 2026-09-01 08:00 and only moves forward: the tests
-- run in order through the autumn term and into the spring one.
-- luacheck: globals test host survey remind escalate follow_up

-- Two schools. 阳光小学: 王丽 heads 三年级1班 (three active children, one
-- returned), 李强 四年级2班 (one child confirmed before the term, one on its
-- first day), 赵敏 五年级1班 but has no phone; 陈国华 is the head, 刘芳 the
-- deputy. 红星小学: 孙伟 heads 一年级1班, 周建 is the head.
local function fixtures(t)
  t.exec("INSERT INTO schools(id, name, town, enrolment) VALUES (1, '阳光小学', '城关镇', 600), (2, '红星小学', '河口镇', 300)")
  t.exec([[INSERT INTO people(id, ukey, kind, name, phone, school_id, class, role) VALUES
    (1, 't1', 'teacher', '王丽', '+8613800000001', 1, '三年级1班', 'teacher'),
    (2, 't2', 'teacher', '李强', '+8613800000002', 1, '四年级2班', 'teacher'),
    (3, 't3', 'teacher', '赵敏', NULL, 1, '五年级1班', 'teacher'),
    (4, 't4', 'teacher', '陈国华', '+8613800000010', 1, NULL, 'head'),
    (5, 't5', 'teacher', '刘芳', '+8613800000011', 1, NULL, 'deputy'),
    (6, 't6', 'teacher', '孙伟', '+8613800000003', 2, '一年级1班', 'teacher'),
    (7, 't7', 'teacher', '周建', '+8613800000012', 2, NULL, 'head'),
    (8, 'g1', 'guardian', '张大山', '+8613912345678', NULL, NULL, NULL)]])
  t.exec([[INSERT INTO children(id, name, gender, birth_date, school_id, class, away, status, confirmed_on) VALUES
    (11, '张小明', 'M', '2016-03-07', 1, '三年级1班', 'both', 'active', NULL),
    (12, '张小红', 'F', '2016-05-20', 1, '三年级1班', 'father', 'active', '2026-03-02'),
    (13, '李明', 'M', '2016-01-15', 1, '三年级1班', 'mother', 'active', NULL),
    (14, '王芳', 'F', '2016-02-01', 1, '三年级1班', 'both', 'returned', NULL),
    (21, '刘洋', 'M', '2015-06-06', 1, '四年级2班', 'both', 'active', '2026-08-20'),
    (22, '何静', 'F', '2015-07-07', 1, '四年级2班', 'both', 'active', '2026-09-01'),
    (31, '陈晨', 'M', '2014-04-04', 1, '五年级1班', 'father', 'active', NULL),
    (41, '孙悦', 'F', '2019-09-09', 2, '一年级1班', 'both', 'active', NULL)]])
end

-- The texts as the plugin's defaults give them: the tests that follow the
-- clock send what the configuration says (the demo county sends its own
-- templates), so they check the parts every wording shares.
local DEFAULTS = { template = false, remind_template = false, escalate_template = false }

-- The messages of this test whose key starts with 'prefix', by recipient.
local function sent(t, prefix)
  local out = {}
  for _, m in ipairs(t.sent()) do
    if m.key:sub(1, #prefix) == prefix then out[#out + 1] = m end
  end
  table.sort(out, function(a, b) return a.key < b.key end)
  return out
end

test("the survey runs at term start, the follow-up every morning", function(t)
  local next = {}
  for _, job in ipairs(t.jobs()) do next[job.name] = job.next end
  t.eq(next, { survey = "2026-09-01T09:00:00+08:00", follow_up = "2026-09-01T09:00:00+08:00" })
end)

test("at term start each class teacher gets one message with masked names", function(t)
  fixtures(t)
  t.advance("1h") -- 09:00 on 2026-09-01
  local msgs = sent(t, "survey:")
  t.eq(#msgs, 3, "王丽, 李强 and 孙伟; 赵敏 has no phone")
  t.eq(msgs[1].key, "survey:teacher:1:2026秋")
  t.eq(msgs[1].to, "+8613800000001")
  t.eq(msgs[1].at, "2026-09-01 09:00")
  t.eq(msgs[1].job, "survey")
  t.contains(msgs[1].text, "王丽老师：新学期请核对本班3名留守儿童信息（张*明、张*红、李*）")
  -- 刘洋 was confirmed in August, before this term; 何静 today: she is done.
  t.eq(msgs[2].key, "survey:teacher:2:2026秋")
  t.contains(msgs[2].text, "李强老师：新学期请核对本班1名留守儿童信息（刘*）")
  t.eq(msgs[3].key, "survey:teacher:6:2026秋")
  t.contains(msgs[3].text, "孙伟老师：新学期请核对本班1名留守儿童信息（孙*）")
  t.eq(#sent(t, "survey:remind:"), 0)
  t.eq(#sent(t, "survey:escalate:"), 0)
  local log = table.concat(t.logs(), "\n")
  t.contains(log, 'msg="term survey: class teacher has no phone, skipped" children=1 class=五年级1班 person=3')
  t.contains(log, "children=6 no_class_teacher=0 refused=0 skipped_no_phone=1 teachers=3 term=2026秋")
end)

test("a rerun sends nothing twice", function(t)
  fixtures(t)
  local first = survey("2026-09-01")
  t.eq(first, { sent = 3, existing = 0, failed = 0, no_phone = 1, children = 6, no_teacher = 0 })
  local again = survey("2026-09-01")
  t.eq(again, { sent = 0, existing = 3, failed = 0, no_phone = 1, children = 6, no_teacher = 0 })
  t.advance("1m")
  t.eq(#t.sent(), 3)
end)

test("the default texts, in full", function(t)
  fixtures(t)
  survey("2026-09-01", DEFAULTS)
  remind("2026-09-08", DEFAULTS)
  escalate("2026-09-15", DEFAULTS)
  t.advance("1m")
  t.eq(sent(t, "survey:teacher:1:")[1].text, "王丽老师：新学期请核对本班3名留守儿童信息（张*明、张*红、李*）："
       .. "是否仍留守、监护人及电话是否变化。核对后请回复教务处或运行 registry confirm。")
  t.eq(sent(t, "survey:remind:1:")[1].text, "王丽老师：本班还有3名留守儿童信息未核对（张*明、张*红、李*），"
       .. "请尽快核对是否仍留守、监护人及电话是否变化，并回复教务处或运行 registry confirm。")
  t.eq(sent(t, "survey:escalate:4:")[1].text, "陈国华校长：2026秋学期留守儿童信息核对已过14天，本校仍有5名未核对："
       .. "三年级1班3人、四年级2班1人、五年级1班1人。请督促班主任尽快核对。")
  t.eq(sent(t, "survey:teacher:1:")[1].parts, 2)
end)

test("mask_names = false writes full names, list_max shortens the list", function(t)
  fixtures(t)
  survey("2026-09-01", { mask_names = false, list_max = 2, template = false })
  t.advance("1m")
  local msgs = sent(t, "survey:teacher:1:")
  t.eq(#msgs, 1)
  t.contains(msgs[1].text, "本班3名留守儿童信息（张小明、张小红等3人）")
end)

test("a child confirmed or re-imported after term start is left out", function(t)
  fixtures(t)
  local status = t.command("registry confirm", { "张小明" })
  t.eq(status, 0)
  -- A re-import that changed 李明's record after the term began.
  t.exec("UPDATE children SET changed_at = ? WHERE id = 13", host.now())
  -- A change later than the clock (a simulation of this term on data
  -- imported in November) does not count.
  t.exec("UPDATE children SET changed_at = ? WHERE id = 12", host.now() + 90 * 86400)
  survey("2026-09-01")
  t.advance("1m")
  local msgs = sent(t, "survey:teacher:1:")
  t.eq(#msgs, 1)
  t.contains(msgs[1].text, "王丽老师：新学期请核对本班1名留守儿童信息（张*红）")
end)

test("a week on, teachers with unconfirmed children are reminded once", function(t)
  fixtures(t)
  t.command("registry confirm", { "刘洋" }) -- 李强's class is done
  -- The host was off for a week: the missed morning check (7 September,
  -- day 6) runs, and reminds nobody yet.
  t.clock.set("2026-09-08 08:30")
  t.advance("1m")
  t.eq(#sent(t, "survey:"), 0)
  t.advance("30m") -- 09:00 on 2026-09-08, day 7
  local msgs = sent(t, "survey:")
  t.eq(#msgs, 2)
  t.eq(msgs[1].key, "survey:remind:1:2026秋")
  t.eq(msgs[1].at, "2026-09-08 09:00")
  t.eq(msgs[1].job, "follow_up")
  t.contains(msgs[1].text, "王丽老师：本班还有3名留守儿童信息未核对（张*明、张*红、李*）")
  t.eq(msgs[2].key, "survey:remind:6:2026秋")
  t.contains(table.concat(t.logs(), "\n"), "skipped_no_phone=1 teachers=2 term=2026秋")
  t.advance("2d") -- the following mornings: nothing again
  t.eq(#sent(t, "survey:"), 2)
end)

test("two weeks on, the head and the deputy get the unconfirmed count per class", function(t)
  fixtures(t)
  t.command("registry confirm", { "张小明", "张小红" })
  -- 红星小学's only class is confirmed in full: its head hears nothing.
  local status, out = t.command("registry confirm", { "--all-class", "红星小学", "一年级1班" })
  t.eq(status, 0, out)
  t.clock.set("2026-09-15 08:30") -- the 14 September check reminds the teachers
  t.advance("31m")                -- 09:00 on 2026-09-15, day 14
  local msgs = sent(t, "survey:escalate:")
  t.eq(#msgs, 2)
  t.eq(msgs[1].key, "survey:escalate:4:2026秋")
  t.eq(msgs[1].to, "+8613800000010")
  t.eq(msgs[1].at, "2026-09-15 09:00")
  t.contains(msgs[1].text, "陈国华校长：2026秋学期留守儿童信息核对已过14天，本校仍有3名未核对："
                            .. "三年级1班1人、四年级2班1人、五年级1班1人。")
  t.eq(msgs[2].key, "survey:escalate:5:2026秋")
  t.eq(msgs[2].text, (msgs[1].text:gsub("^陈国华", "刘芳")))
  local reminded = sent(t, "survey:remind:")
  t.eq(#reminded, 2, "王丽 (李明) and 李强 (刘洋)")
  t.eq(reminded[1].at, "2026-09-15 08:30")
  t.contains(table.concat(t.logs(), "\n"), "heads=2 refused=0 schools=1 schools_without_head=0")
  t.advance("1d")
  t.eq(#sent(t, "survey:escalate:"), 2, "once a term")
end)

test("confirming the last children stops the escalation", function(t)
  fixtures(t)
  t.command("registry confirm", { "--all-class", "阳光小学", "三年级1班" })
  t.command("registry confirm", { "--all-class", "阳光小学", "四年级2班" })
  t.command("registry confirm", { "陈晨", "--status", "returned" })
  local counts = escalate("2026-09-16")
  t.eq(counts.sent, 1, "周建 only")
  t.advance("1m")
  local msgs = sent(t, "survey:escalate:")
  t.eq(#msgs, 1)
  t.eq(msgs[1].key, "survey:escalate:7:2026秋")
  t.contains(msgs[1].text, "周建校长：2026秋学期留守儿童信息核对已过15天，本校仍有1名未核对：一年级1班1人。")
end)

test("a new term asks again: last term's confirmations do not count", function(t)
  fixtures(t)
  t.command("registry confirm", { "--all-class", "阳光小学", "三年级1班" })
  t.clock.set("2027-02-22 08:00")
  t.advance("1h")
  local msgs = sent(t, "survey:teacher:")
  t.eq(#msgs, 3)
  t.eq(msgs[1].key, "survey:teacher:1:2027春")
  t.eq(msgs[1].at, "2027-02-22 09:00")
  t.contains(msgs[1].text, "王丽老师：新学期请核对本班3名留守儿童信息（张*明、张*红、李*）")
  -- 何静 was confirmed on the autumn term's first day: she is asked again.
  t.contains(msgs[2].text, "李强老师：新学期请核对本班2名留守儿童信息（何*、刘*）")
end)

test("outside a term the survey does nothing", function(t)
  fixtures(t)
  t.eq(survey("2026-07-15"), nil)
  t.contains(table.concat(t.logs(), "\n"), "no term starts around this date")
  t.eq(follow_up("2026-08-01"), nil)
end)

test("a template the survey cannot fill is refused and logged, the others go on", function(t)
  fixtures(t)
  t.logs()
  -- The demo county's 'meeting' template needs a child and a date.
  local counts = survey("2026-09-01", { template = "meeting" })
  t.eq(counts.failed, 3)
  t.eq(counts.sent, 0)
  local log = table.concat(t.logs(), "\n")
  t.contains(log, "key=survey:teacher:1:2026秋")
  t.contains(log, "needs parameter 'child'")
end)

test("a class no teacher heads is counted, and its children reach the head", function(t)
  fixtures(t)
  t.exec([[INSERT INTO children(id, name, gender, birth_date, school_id, class, away)
           VALUES (51, '马骏', 'M', '2013-03-03', 1, '六年级1班', 'both')]])
  t.logs()
  local counts = survey("2026-09-01")
  t.eq(counts.no_teacher, 1)
  t.contains(table.concat(t.logs(), "\n"), "no_class_teacher=1")
  escalate("2026-09-15")
  t.advance("1m")
  local msgs = sent(t, "survey:escalate:4:")
  t.eq(#msgs, 1)
  t.contains(msgs[1].text, "本校仍有6名未核对：三年级1班3人、四年级2班1人、五年级1班1人、六年级1班1人。")
end)

test("a reminder every send of which was refused is tried again the next school day", function(t)
  fixtures(t)
  t.logs()
  -- 2027-03-01 is day 7 of 2027春; the demo's 'meeting' template cannot
  -- be filled: every reminder is refused.
  follow_up("2027-03-01", { remind_template = "meeting" })
  t.contains(table.concat(t.logs(), "\n"), "nobody could be told, trying again the next school day")
  follow_up("2027-03-02", DEFAULTS)
  follow_up("2027-03-03", DEFAULTS)
  t.advance("1m")
  local msgs = sent(t, "survey:remind:")
  t.eq(#msgs, 3, "王丽, 李强 and 孙伟, once")
  t.eq(msgs[1].key, "survey:remind:1:2027春")
  t.eq(host.kv.get("remind:2027春"), "2027-03-02")
end)

test("a step with nobody left to tell is done", function(t)
  fixtures(t)
  for _, class in ipairs({ "三年级1班", "四年级2班", "五年级1班" }) do
    t.command("registry confirm", { "--all-class", "阳光小学", class })
  end
  t.command("registry confirm", { "--all-class", "红星小学", "一年级1班" })
  follow_up("2027-03-08", DEFAULTS) -- day 14: nobody to remind, nobody to escalate to
  t.eq(host.kv.get("remind:2027春"), "2027-03-08")
  t.eq(host.kv.get("escalate:2027春"), "2027-03-08")
  t.advance("1m")
  t.eq(#sent(t, "survey:"), 0)
end)
