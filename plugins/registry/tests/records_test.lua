-- Tests of the record commands (lib/records.lua): show, find, log, visit
-- done, pair, unpair and confirm, run as the CLI runs them. The fake clock
-- starts on 2026-09-01 08:00, the first day of the 2026秋 term.
-- luacheck: globals test host
local _ -- the output a check does not look at

-- Two schools, a class each, teachers, a volunteer and a few children with
-- their contact cards.
local function fixtures()
  local db = host.db
  db.exec("INSERT INTO schools(id, name, town, enrolment) VALUES (1, '阳光小学', '城关镇', 600), (2, '红星小学', '河口镇', 300)")
  db.exec([[INSERT INTO people(id, ukey, kind, name, phone, school_id, class, role) VALUES
    (1, 't:王丽', 'teacher', '王丽', '+8613800000001', 1, '三年级1班', 'teacher'),
    (2, 't:李强', 'teacher', '李强', '+8613800000002', 1, '四年级2班', 'teacher'),
    (3, 'v:陈志', 'volunteer', '陈志', '+8613800000003', NULL, NULL, NULL),
    (4, 't:李强2', 'teacher', '李强', '+8613800000004', 2, '一年级1班', 'teacher'),
    (10, 'g:张大山', 'guardian', '张大山', '+8613912345678', NULL, NULL, NULL),
    (11, 'p:张三', 'parent', '张三', '+8613700001111', NULL, NULL, NULL),
    (12, 'p:刘红', 'parent', '刘红', NULL, NULL, NULL, NULL)]])
  db.exec([[INSERT INTO children(id, name, gender, birth_date, school_id, class, village, away, away_since,
                                 status, performance, notes, confirmed_on) VALUES
    (12, '张小明', 'M', '2016-03-07', 1, '三年级1班', '李家村', 'both', '2022-02-01', 'active', 'medium',
         '喜欢画画', NULL),
    (13, '张小红', 'F', '2017-05-20', 1, '三年级1班', '李家村', 'father', NULL, 'active', 'good', NULL, NULL),
    (14, '王小军', 'M', '2015-11-02', 1, '四年级2班', '王庄', 'mother', NULL, 'active', NULL, NULL, NULL),
    (15, '王小军', 'M', '2016-01-15', 2, '一年级1班', '河口村', 'both', NULL, 'active', 'poor', NULL, NULL),
    (16, '刘洋', 'M', '2016-06-06', 1, '三年级1班', NULL, 'both', NULL, 'returned', NULL, NULL, '2026-03-01')]])
  db.exec([[INSERT INTO guardianships(child_id, person_id, relation, is_primary, workplace) VALUES
    (12, 10, 'paternal_grandparent', 1, NULL),
    (12, 11, 'father', 0, '广东东莞'),
    (13, 10, 'paternal_grandparent', 1, NULL),
    (16, 12, 'mother', 1, '浙江义乌')]])
end

------------------------------------------------------------------ show

test("show prints the card: guardians with full phones, proxy parents, visits, contacts", function(t)
  fixtures()
  host.db.exec("INSERT INTO pairings(child_id, person_id, since) VALUES (12, 3, '2026-03-01')")
  host.db.exec([[INSERT INTO visits(child_id, visitor_id, kind, term, due, done) VALUES
    (12, 1, 'term_start', '2026秋', '2026-09-15', NULL),
    (12, 1, 'term_end', '2026春', '2026-07-01', '2026-06-28')]])
  host.db.exec([[INSERT INTO contact_log(child_id, kind, on_date, by_id, notes, logged_at) VALUES
    (12, 'letter', '2026-08-20', 1, '给爸爸写信', 0), (12, 'call', '2026-08-25', NULL, NULL, 0)]])
  local status, out, err = t.command("registry show", { "#12" })
  t.eq(status, 0, "exit status")
  t.eq(err, "")
  local want = table.concat({
    "张小明  #12",
    "  性别      男",
    "  出生日期  2016-03-07（10岁）",
    "  学校      阳光小学  三年级1班",
    "  村        李家村",
    "  外出      父母均外出，自2022-02-01",
    "  状态      留守",
    "  学习表现  中等",
    "  备注      喜欢画画",
    "  核对日期  未核对",
    "监护人与父母",
    "  祖父母    张大山    13912345678   主要监护人",
    "  父亲      张三      13700001111   务工地：广东东莞",
    "结对帮扶（代理家长）",
    "  陈志      志愿者  13800000003   自2026-03-01",
    "本学年家访（已完成 0 / 1）",
    "  2026秋  开学家访  应于2026-09-15  未完成                王丽",
    "最近联系记录（最多 10 条）",
    "  2026-08-25  打电话",
    "  2026-08-20  写信        王丽      给爸爸写信",
  }, "\n") .. "\n"
  t.eq(out, want)
end)

test("each show is in the audit log", function(t)
  fixtures()
  t.command("registry show", { "12" })
  local row = t.one("SELECT actor, action, subject FROM yz_audit WHERE action = 'registry.show' ORDER BY id DESC")
  t.eq(row, { actor = "registry", action = "registry.show", subject = "child:12" })
end)

test("show finds a child by name; --school tells two of one name apart", function(t)
  fixtures()
  local status, out, err = t.command("registry show", { "王小军" })
  t.eq(status, 1)
  t.eq(out, "")
  t.contains(err, "several children match '王小军'")
  t.contains(err, "#14     王小军  阳光小学  四年级2班  2015-11-02  留守")
  t.contains(err, "#15     王小军  红星小学  一年级1班  2016-01-15  留守")
  status, out = t.command("registry show", { "王小军", "--school", "红星小学" })
  t.eq(status, 0)
  t.contains(out, "王小军  #15")
  status, out = t.command("registry show", { "王小军", "--class=四年级2班" })
  t.eq(status, 0)
  t.contains(out, "王小军  #14")
end)

test("an unknown child is an error with a suggestion; bad usage exits 2", function(t)
  fixtures()
  local status, out, err = t.command("registry show", { "张晓明" })
  t.eq(status, 1)
  t.eq(out, "")
  t.eq(err, "no child matches '张晓明' (did you mean 张小明 #12?)\n")
  status, _, err = t.command("registry show", { "#99" })
  t.eq(status, 1)
  t.eq(err, "no child #99\n")
  status, _, err = t.command("registry show", { "王小军", "--school", "希望小学" })
  t.eq(status, 1)
  t.eq(err, "no school '希望小学'\n")
  status, _, err = t.command("registry show", {})
  t.eq(status, 2)
  t.contains(err, "usage: yizhan registry show CHILD")
  status, _, err = t.command("registry show", { "12", "--colour" })
  t.eq(status, 2)
  t.contains(err, "unknown option --colour")
  t.eq(t.one("SELECT count(*) AS n FROM yz_audit WHERE action = 'registry.show'").n, 0,
       "nothing shown, nothing audited")
end)

------------------------------------------------------------------ find

test("find matches children's names, guardians' names and phone digits", function(t)
  fixtures()
  local status, out = t.command("registry find", { "小" })
  t.eq(status, 0)
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  t.eq(lines, {
    "#15     王小军  红星小学  一年级1班  留守",
    "#12     张小明  阳光小学  三年级1班  留守",
    "#13     张小红  阳光小学  三年级1班  留守",
    "#14     王小军  阳光小学  四年级2班  留守",
  })

  status, out = t.command("registry find", { "张大山" })
  t.eq(status, 0)
  t.contains(out, "#12     张小明  阳光小学  三年级1班  留守  （祖父母 张大山）")
  t.contains(out, "#13     张小红  阳光小学  三年级1班  留守  （祖父母 张大山）")

  status, out = t.command("registry find", { "1370000" })
  t.eq(status, 0)
  t.contains(out, "#12     张小明  阳光小学  三年级1班  留守  （父亲 张三）")
  t.eq(select(2, out:gsub("\n", "")), 1, "one line")

  status, out = t.command("registry find", { "+86 139 1234" })
  t.eq(status, 0)
  t.eq(select(2, out:gsub("\n", "")), 2)

  local err
  status, out, err = t.command("registry find", { "赵" })
  t.eq(status, 1)
  t.eq(out, "")
  t.eq(err, "no child, guardian or phone matches '赵'\n")
  status = t.command("registry find", {})
  t.eq(status, 2)
end)

test("find lists at most 50 and says how many more", function(t)
  fixtures()
  for i = 1, 60 do
    host.db.exec("INSERT INTO children(name, gender, birth_date, school_id, class, away)"
                 .. " VALUES (?, 'F', ?, 2, '二年级1班', 'both')",
                 ("李小%02d"):format(i), ("2017-01-%02d"):format((i - 1) % 28 + 1))
  end
  local status, out = t.command("registry find", { "李小" })
  t.eq(status, 0)
  t.eq(select(2, out:gsub("\n", "")), 51)
  t.contains(out, "… 10 more (narrow with --school / --class, or --all)\n")
  status, out = t.command("registry find", { "李小", "--all" })
  t.eq(status, 0)
  t.eq(select(2, out:gsub("\n", "")), 60)
end)

------------------------------------------------------------------ log

test("log records a letter today, or on a given date; the future is refused", function(t)
  fixtures()
  local status, out = t.command("registry log", { "letter", "张小明" })
  t.eq(status, 0)
  t.contains(out, "logged letter (写信) for 张小明 #12 on 2026-09-01")
  t.eq(host.db.one("SELECT kind, on_date, by_id FROM contact_log WHERE child_id = 12"),
       { kind = "letter", on_date = "2026-09-01" })

  status, out = t.command("registry log", { "guardian-contact", "#13", "--date", "2026年8月30日", "--by", "王丽",
                                            "--notes", "奶奶说孩子很好" })
  t.eq(status, 0)
  t.contains(out, "logged guardian_contact (联系监护人) for 张小红 #13 on 2026-08-30 by 王丽")
  t.eq(host.db.one("SELECT kind, on_date, by_id, notes FROM contact_log WHERE child_id = 13"),
       { kind = "guardian_contact", on_date = "2026-08-30", by_id = 1, notes = "奶奶说孩子很好" })

  local err
  status, _, err = t.command("registry log", { "call", "12", "--date", "2026-09-02" })
  t.eq(status, 1)
  t.eq(err, "--date 2026-09-02 is in the future (today is 2026-09-01)\n")
  status, _, err = t.command("registry log", { "email", "12" })
  t.eq(status, 2)
  t.contains(err, "unknown kind 'email'")
  status, _, err = t.command("registry log", { "call", "12", "--date", "2026-02-30" })
  t.eq(status, 2)
  t.contains(err, "yizhan registry log: --date '2026-02-30': no such date\n")
  t.eq(host.db.one("SELECT count(*) AS n FROM contact_log").n, 2, "nothing more written")

  -- --by a guardian: the child's own, though another has the same name
  host.db.exec("INSERT INTO people(id, ukey, kind, name, phone) VALUES (30, 'g:张大山2', 'guardian', '张大山', NULL)")
  status, out = t.command("registry log", { "call", "#12", "--by", "张大山" })
  t.eq(status, 0, out)
  t.eq(host.db.one("SELECT by_id FROM contact_log WHERE child_id = 12 AND kind = 'call'").by_id, 10)
end)

------------------------------------------------------------------ visit done

test("visit done marks the earliest open scheduled visit, else records an ad hoc one", function(t)
  fixtures()
  host.db.exec([[INSERT INTO visits(id, child_id, visitor_id, kind, term, due, done) VALUES
    (1, 12, 1, 'mid_term', '2026秋', '2026-11-09', NULL),
    (2, 12, 1, 'term_start', '2026秋', '2026-09-15', NULL),
    (3, 12, 1, 'term_end', '2026春', '2026-07-01', '2026-06-30')]])
  local status, out = t.command("registry visit", { "done", "张小明", "--notes", "奶奶身体好" })
  t.eq(status, 0)
  t.eq(out, "marked the 2026秋 term_start visit of 张小明 #12 (due 2026-09-15) done on 2026-09-01\n")
  t.eq(host.db.one("SELECT done, notes FROM visits WHERE id = 2"), { done = "2026-09-01", notes = "奶奶身体好" })

  status, out = t.command("registry visit", { "done", "12", "--kind", "term_end", "--date", "2026-08-31" })
  t.eq(status, 0)
  t.eq(out, "no open term_end visit is due; recorded an ad hoc visit to 张小明 #12 on 2026-08-31 (visit 4)\n")
  t.eq(host.db.one("SELECT kind, term, due, done FROM visits WHERE id = 4"), { kind = "ad_hoc", done = "2026-08-31" })

  -- On 2026-09-01 the mid-term visit (due 11-09) is too far off to be
  -- this one: a visit counts for one due within 30 days.
  status, out = t.command("registry visit", { "done", "12", "--by", "陈志" })
  t.eq(status, 0)
  t.eq(out, "no open visit is due; recorded an ad hoc visit to 张小明 #12 on 2026-09-01 (visit 5)\n")
  t.clock.set("2026-10-20 10:00")
  status, out = t.command("registry visit", { "done", "12" })
  t.eq(status, 0)
  t.contains(out, "marked the 2026秋 mid_term visit of 张小明 #12 (due 2026-11-09) done on 2026-10-20")
  t.clock.set("2026-09-01 08:00") -- the clock carries on to the next tests
  t.eq(host.db.one("SELECT kind, term, visitor_id FROM visits WHERE id = 5"),
       { kind = "ad_hoc", term = "2026秋", visitor_id = 3 })

  local err
  status, _, err = t.command("registry visit", { "due", "12" })
  t.eq(status, 2)
  t.contains(err, "unknown visit command 'due'")
  status, _, err = t.command("registry visit", { "done", "12", "--kind", "weekly" })
  t.eq(status, 2)
  t.contains(err, "--kind: unknown kind 'weekly'")
end)

test("visit done without --kind keeps to the visit's term: last term's open visit is not taken", function(t)
  fixtures()
  host.db.exec([[INSERT INTO visits(id, child_id, visitor_id, kind, term, due, done) VALUES
    (1, 12, 1, 'term_end', '2026秋', '2027-01-22', NULL),
    (2, 12, 1, 'term_start', '2027春', '2027-03-08', NULL),
    (3, 12, 1, 'mid_term', '2027春', '2027-04-19', NULL),
    (4, 13, 1, 'term_end', '2026秋', '2027-01-22', NULL)]])
  t.clock.set("2027-04-01 10:00")
  local runs = {}
  for i, args in ipairs({ { "12", "2027-03-20" }, { "12", "2027-03-02" }, { "13", "2027-01-25" } }) do
    runs[i] = { t.command("registry visit", { "done", args[1], "--date", args[2] }) }
  end
  t.clock.set("2026-09-01 08:00") -- the clock carries on to the next tests
  -- Late for the term-start visit (due earlier in the term): that one.
  t.eq(runs[1], { 0, "marked the 2027春 term_start visit of 张小明 #12 (due 2027-03-08) done on 2027-03-20\n", "" })
  -- Nothing of this term due within 30 days: an ad hoc visit, and the
  -- autumn's term-end visit stays open.
  t.eq(runs[2][1], 0)
  t.contains(runs[2][2], "no open visit is due; recorded an ad hoc visit to 张小明 #12 on 2027-03-02")
  t.eq(host.db.one("SELECT done FROM visits WHERE id = 1"), {})
  -- In the winter holiday, the term just ended is the visit's term.
  t.eq(runs[3], { 0, "marked the 2026秋 term_end visit of 张小红 #13 (due 2027-01-22) done on 2027-01-25\n", "" })
end)

------------------------------------------------------------------ pair, unpair

test("pair adds proxy parents, at most two, with a clear error", function(t)
  fixtures()
  local status, out = t.command("registry pair", { "张小明", "陈志" })
  t.eq(status, 0)
  t.eq(out, "paired 张小明 #12 with 陈志 (志愿者) since 2026-09-01\n")
  -- Two teachers are called 李强: the one at the child's school is meant.
  status, out = t.command("registry pair", { "张小明", "李强", "--since", "2026-08-15" })
  t.eq(status, 0)
  t.eq(out, "paired 张小明 #12 with 李强 (教师) since 2026-08-15\n")
  t.eq(host.db.one("SELECT person_id FROM pairings WHERE child_id = 12 AND since = '2026-08-15'").person_id, 2)

  local err
  status, out, err = t.command("registry pair", { "张小明", "王丽" })
  t.eq(status, 1)
  t.eq(out, "")
  t.eq(err, "张小明 already has two proxy parents: 李强, 陈志 (unpair one first: registry unpair #12 PERSON)\n")
  status, _, err = t.command("registry pair", { "张小明", "陈志" })
  t.eq(status, 1)
  t.eq(err, "张小明 is already paired with 陈志\n")
  status, _, err = t.command("registry pair", { "张小明", "张大山" })
  t.eq(status, 1)
  t.eq(err, "no teacher or volunteer named '张大山'\n")
  status, _, err = t.command("registry pair", { "张小明", "#10" })
  t.eq(status, 1)
  t.eq(err, "张大山 #10 is a guardian, not a teacher or volunteer\n")
  -- At another school, two teachers of that name: the list.
  status, _, err = t.command("registry pair", { "刘洋", "李强", "--school", "阳光小学" })
  t.eq(status, 0, err)

  status, out = t.command("registry unpair", { "张小明", "陈志" })
  t.eq(status, 0)
  t.eq(out, "张小明 #12 is no longer paired with 陈志 (since 2026-09-01)\n")
  status = t.command("registry pair", { "张小明", "王丽" })
  t.eq(status, 0)
  status, _, err = t.command("registry unpair", { "张小明", "陈志" })
  t.eq(status, 1)
  t.eq(err, "张小明 is not paired with 陈志\n")
  status, _, err = t.command("registry unpair", { "张小明", "李强", "--date", "2026-08-01" })
  t.eq(status, 1)
  t.eq(err, "--date 2026-08-01 is before the pairing began (2026-08-15)\n")
  t.eq(host.db.one([[SELECT count(*) AS n FROM pairings WHERE child_id = 12 AND "until" IS NULL]]).n, 2)
end)

test("a pairing with an end date still to come is running: shown, counted, ended by unpair", function(t)
  fixtures()
  host.db.exec([[INSERT INTO pairings(child_id, person_id, since, "until") VALUES
    (12, 3, '2026-03-01', '2026-12-31'), (12, 1, '2026-03-01', '2026-06-30')]])
  local _, out = t.command("registry show", { "#12" })
  t.contains(out, "结对帮扶（代理家长）\n  陈志      志愿者  13800000003   自2026-03-01至2026-12-31\n本学年")
  local status, _, err = t.command("registry pair", { "张小明", "陈志" })
  t.eq({ status, err }, { 1, "张小明 is already paired with 陈志\n" })
  t.eq((t.command("registry pair", { "张小明", "李强" })), 0)
  status, _, err = t.command("registry pair", { "张小红", "王丽" })
  t.eq(status, 0, err)
  status, _, err = t.command("registry pair", { "张小明", "王丽" })
  t.eq({ status, err }, { 1, "张小明 already has two proxy parents: 陈志, 李强"
                             .. " (unpair one first: registry unpair #12 PERSON)\n" })
  status, out = t.command("registry unpair", { "张小明", "陈志" })
  t.eq(status, 0)
  t.eq(out, "张小明 #12 is no longer paired with 陈志 (since 2026-09-01)\n")
  t.eq(host.db.one([[SELECT "until" AS u FROM pairings WHERE child_id = 12 AND person_id = 3]]).u, "2026-09-01")
  -- a pairing that has not begun is called off
  host.db.exec("INSERT INTO pairings(child_id, person_id, since) VALUES (13, 3, '2026-10-01')")
  status, out = t.command("registry unpair", { "张小红", "陈志" })
  t.eq(status, 0)
  t.eq(out, "张小红 #13 will not be paired with 陈志 (it was to begin on 2026-10-01)\n")
  t.eq(host.db.one("SELECT count(*) AS n FROM pairings WHERE child_id = 13 AND person_id = 3").n, 0)
end)

test("a person named ambiguously is listed", function(t)
  fixtures()
  host.db.exec("INSERT INTO people(id, ukey, kind, name, phone) VALUES (20, 'v:李强', 'volunteer', '李强', NULL)")
  local status, out, err = t.command("registry pair", { "王小军", "李强", "--school", "红星小学" })
  t.eq(status, 0, err)
  t.contains(out, "with 李强 (教师)")
  status, _, err = t.command("registry pair", { "#16", "李强" })
  t.eq(status, 0, err) -- 刘洋's school has one 李强 among teachers
  host.db.exec("INSERT INTO people(id, ukey, kind, name, phone, school_id)"
               .. " VALUES (21, 'v:李强3', 'volunteer', '李强', NULL, 1)")
  status, _, err = t.command("registry pair", { "#13", "李强" })
  t.eq(status, 1)
  t.contains(err, "several people are called '李强'; name one by id:")
  t.contains(err, "#2      李强  教师  阳光小学 四年级2班")
  t.contains(err, "#21     李强  志愿者  阳光小学")
end)

------------------------------------------------------------------ confirm

test("confirm sets the confirmation date; a new status is an event", function(t)
  fixtures()
  local status, out = t.command("registry confirm", { "张小明", "#13" })
  t.eq(status, 0)
  t.eq(out, "confirmed 张小明 #12 (阳光小学 三年级1班) on 2026-09-01, status active\n"
         .. "confirmed 张小红 #13 (阳光小学 三年级1班) on 2026-09-01, status active\n"
         .. "2 children confirmed\n")
  t.eq(host.db.one("SELECT confirmed_on, status FROM children WHERE id = 12"),
       { confirmed_on = "2026-09-01", status = "active" })
  t.eq(t.events(), {})

  status, out = t.command("registry confirm", { "14", "--status", "returned" })
  t.eq(status, 0)
  t.eq(out, "confirmed 王小军 #14 (阳光小学 四年级2班) on 2026-09-01, status active -> returned\n")
  t.eq(host.db.one("SELECT status FROM children WHERE id = 14").status, "returned")
  t.ok(host.db.one("SELECT changed_at FROM children WHERE id = 14").changed_at > 0, "changed_at set")
  local ev = t.events()
  t.eq(#ev, 2)
  t.eq(ev[1].topic, "registry.child_changed")
  t.eq(ev[1].from, "registry")
  t.eq(ev[1].data, { child = 14, school = 1, class = "四年级2班", fields = { "status" } })
  t.eq(ev[2].topic, "registry.child_left")
  t.eq(ev[2].data, { child = 14, school = 1, class = "四年级2班", status = "returned", old_status = "active" })

  -- an earlier date never moves a confirmation back in time
  status = t.command("registry confirm", { "#12", "--date", "2026-08-20" })
  t.eq(status, 0)
  t.eq(host.db.one("SELECT confirmed_on FROM children WHERE id = 12").confirmed_on, "2026-09-01")
  t.eq(t.command("registry confirm", { "#13", "--status", "在册" }), 0) -- the import's word too

  status = t.command("registry confirm", { "刘洋", "--status", "留守" })
  t.eq(status, 0)
  ev = t.events() -- all of this test's, so far
  t.eq(#ev, 3)
  t.eq(ev[3].topic, "registry.child_changed")
  t.eq(ev[3].data, { child = 16, school = 1, class = "三年级1班", fields = { "status" } })
end)

test("confirm --all-class confirms the class's active children", function(t)
  fixtures()
  local status, out = t.command("registry confirm", { "--all-class", "阳光小学", "三年级1班", "--date", "2026-08-31" })
  t.eq(status, 0)
  t.contains(out, "2 children confirmed")
  t.eq(host.db.one("SELECT group_concat(id) AS ids FROM children WHERE confirmed_on = '2026-08-31'").ids, "12,13")
  local err
  status, _, err = t.command("registry confirm", { "--all-class", "阳光小学", "九年级9班" })
  t.eq(status, 1)
  t.eq(err, "no active child in 阳光小学 九年级9班\n")
  status, _, err = t.command("registry confirm", { "--all-class", "阳光小学" })
  t.eq(status, 2)
  t.contains(err, "--all-class needs 2 values")
end)

test("one unknown child in a confirm changes nothing", function(t)
  fixtures()
  local status, _, err = t.command("registry confirm", { "张小明", "张晓红" })
  t.eq(status, 1)
  t.eq(err, "no child matches '张晓红' (did you mean 张小红 #13?)\n")
  t.eq(host.db.one("SELECT count(*) AS n FROM children WHERE confirmed_on IS NOT NULL AND id <> 16").n, 0)
  status, _, err = t.command("registry confirm", { "张小明", "--status", "moved" })
  t.eq(status, 2)
  t.contains(err, "--status: unknown status 'moved'")
end)
