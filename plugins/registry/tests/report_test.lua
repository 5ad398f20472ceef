-- Tests of `yizhan report` on a small county whose table is worked out by
-- hand below (not with the code under test). They need the calendar of the
-- demo county (examples/county): 2026秋 from 2026-09-01 to 2027-01-22, 2027春
-- from 2027-02-22 to 2027-07-02, in Asia/Shanghai.
-- luacheck: globals test host
local report = require("lib.report")

-- Two schools, 200 students; nine children, seven of them still left behind
-- (8 has returned, 9 graduated). The active seven:
--   id school gender guardian (primary)     performance
--   1  城关   M      paternal_grandparent   good
--   2  城关   F      paternal_grandparent   good
--   3  城关   M      maternal_grandparent   medium
--   4  城关   F      other_relative         poor
--   5  河口   M      paternal_grandparent   good
--   6  河口   F      maternal_grandparent   medium
--   7  河口   M      father (a parent home) none   (+ a non-primary grandmother)
local function county(t)
  t.exec("INSERT INTO schools(id, name, town, enrolment) VALUES (1, '城关小学', '城关镇', 120)")
  t.exec("INSERT INTO schools(id, name, town, enrolment) VALUES (2, '河口小学', '河口乡', 80)")
  local people = {
    { 1, "张爷爷" }, { 2, "李奶奶" }, { 3, "王外婆" }, { 4, "赵姑姑" }, { 5, "陈爷爷" },
    { 6, "刘外公" }, { 7, "周父" }, { 8, "吴外婆" },
  }
  for _, p in ipairs(people) do
    t.exec("INSERT INTO people(id, ukey, kind, name) VALUES (?, ?, 'guardian', ?)", p[1], "k" .. p[1], p[2])
  end
  t.exec("INSERT INTO people(id, ukey, kind, name, school_id, class, role) "
    .. "VALUES (20, 'k20', 'teacher', '黄老师', 1, '三年级1班', 'teacher')")
  local children = {
    { 1, "张小明", "M", 1, "good", "active" },
    { 2, "李红", "F", 1, "good", "active" },
    { 3, "王强", "M", 1, "medium", "active" },
    { 4, "赵丽", "F", 1, "poor", "active" },
    { 5, "陈刚", "M", 2, "good", "active" },
    { 6, "刘芳", "F", 2, "medium", "active" },
    { 7, "周杰", "M", 2, nil, "active" },
    { 8, "吴敏", "F", 2, "good", "returned" },
    { 9, "孙磊", "M", 1, "poor", "graduated" },
  }
  for _, c in ipairs(children) do
    t.exec("INSERT INTO children(id, name, gender, birth_date, school_id, class, away, status, performance) "
      .. "VALUES (?, ?, ?, '2016-05-0' || ?, ?, '三年级1班', 'both', ?, nullif(?, ''))",
      c[1], c[2], c[3], c[1], c[4], c[6], c[5] or "")
  end
  local guardians = {
    { 1, 1, "paternal_grandparent", 1 }, { 2, 2, "paternal_grandparent", 1 },
    { 3, 3, "maternal_grandparent", 1 }, { 4, 4, "other_relative", 1 },
    { 5, 5, "paternal_grandparent", 1 }, { 6, 6, "maternal_grandparent", 1 },
    { 7, 7, "father", 1 }, { 7, 6, "maternal_grandparent", 0 },
    { 8, 8, "maternal_grandparent", 1 },
  }
  for _, g in ipairs(guardians) do
    t.exec("INSERT INTO guardianships(child_id, person_id, relation, is_primary) VALUES (?, ?, ?, ?)",
      g[1], g[2], g[3], g[4])
  end
  -- Visits of 2026秋 (2026-09-01 to 2027-01-22), seen on 2026-11-29:
  -- county: 6 due (1ts 2ts 3ts 1mt 5mt 6te), 3 done, 2 overdue (3ts, 5mt);
  -- 8's is not counted (returned), 4's was last term, 7's ad hoc has no due.
  local visits = {
    { 1, "term_start", "2026秋", "2026-09-10", "2026-09-08" },
    { 2, "term_start", "2026秋", "2026-09-10", "2026-09-12" },
    { 3, "term_start", "2026秋", "2026-09-10", nil },
    { 1, "mid_term", "2026秋", "2026-11-20", "2026-11-18" },
    { 5, "mid_term", "2026秋", "2026-11-20", nil },
    { 6, "term_end", "2026秋", "2027-01-15", nil },
    { 8, "term_start", "2026秋", "2026-09-10", "2026-09-09" },
    { 4, "term_end", "2026春", "2026-06-30", nil },
    { 7, "ad_hoc", nil, nil, "2026-10-05" },
  }
  for _, v in ipairs(visits) do
    t.exec("INSERT INTO visits(child_id, visitor_id, kind, term, due, done) "
      .. "VALUES (?, 20, ?, nullif(?, ''), nullif(?, ''), nullif(?, ''))",
      v[1], v[2], v[3] or "", v[4] or "", v[5] or "")
  end
  -- Contacts in November 2026: a letter or call for 1 (twice) and 5; a
  -- guardian contacted for 2, 6 and 3 (on the 29th). Not counted: 3's
  -- letter in October, 8 (returned), 4's talk, 7's contact in September.
  local contacts = {
    { 1, "letter", "2026-11-03" }, { 1, "call", "2026-11-20" }, { 3, "letter", "2026-10-28" },
    { 5, "call", "2026-11-01" }, { 8, "letter", "2026-11-05" }, { 4, "talk", "2026-11-10" },
    { 2, "guardian_contact", "2026-11-15" }, { 6, "guardian_contact", "2026-11-02" },
    { 7, "guardian_contact", "2026-09-30" }, { 3, "guardian_contact", "2026-11-29" },
  }
  for _, c in ipairs(contacts) do
    t.exec("INSERT INTO contact_log(child_id, kind, on_date, by_id, logged_at) VALUES (?, ?, ?, 20, 0)",
      c[1], c[2], c[3])
  end
  -- Messages (created_at in ms; the epochs are Asia/Shanghai times, from
  -- `TZ=Asia/Shanghai date -d ... +%s`). The term starts at 1788192000
  -- (2026-09-01 00:00); the one a second before is not counted. Counted:
  -- sent 2 (parts 1 + 1), delivered 2 (parts 2 + 1), failed 1, dead 1,
  -- queued 1: out 4, parts 5.
  local messages = {
    { "sent", 1, 1791597600 },      -- 2026-10-10 10:00
    { "delivered", 2, 1793494800 }, -- 2026-11-01 09:00
    { "delivered", 1, 1795827600 }, -- 2026-11-28 09:00
    { "failed", 1, 1795831200 },    -- 2026-11-28 10:00
    { "dead", 3, 1795140000 },      -- 2026-11-20 10:00
    { "queued", 1, 1795914000 },    -- 2026-11-29 09:00
    { "sent", 1, 1788191999 },      -- 2026-08-31 23:59:59, before the term
    { "sent", 1, 1788192000 },      -- 2026-09-01 00:00, the term's first second
  }
  for i, m in ipairs(messages) do
    t.exec("INSERT INTO yz_outbox(key, channel, recipient, text, ucs2, parts, state, next_at, created_at, "
      .. "updated_at) VALUES (?, 'demo', '+8613800138000', '您好', 1, ?, ?, 0, ?, 0)",
      "report-test:" .. i, m[2], m[1], m[3] * 1000)
  end
end

local function sp(n) return string.rep(" ", n) end

-- Percentages by largest remainder, in tenths, worked by hand:
--   3/7 = 42.857, 2/7 = 28.571: rounded down 428 + 285 + 285 = 998; the two
--   tenths missing go to the largest remainders (.71 twice, over .57), so
--   42.8, 28.6, 28.6 (plain rounding would give 42.9 + 28.6 + 28.6 = 100.1).
--   3,2,1,1 of 7: 428 285 142 142 = 997; remainders .57 .71 .86 .86: the three
--   tenths go to the two 1/7 and the 2/7: 42.8 28.6 14.3 14.3.
--   4,3 of 7: 571 (.43) + 428 (.57) = 999: 57.1, 42.9.
--   1,1,1 of 3: 333 each, remainders equal, the first gets it: 33.4 33.3 33.3.
test("largest-remainder shares sum to 1000 tenths, ties to the earlier item", function(t)
  t.eq(report.shares({ 3, 2, 2 }), { 428, 286, 286 })
  t.eq(report.shares({ 3, 2, 1, 1 }), { 428, 286, 143, 143 })
  t.eq(report.shares({ 4, 3 }), { 571, 429 })
  t.eq(report.shares({ 1, 1, 1 }), { 334, 333, 333 })
  t.eq(report.shares({ 1, 1, 0, 1 }), { 334, 333, 0, 333 })
  t.eq(report.shares({ 2, 0 }), { 1000, 0 })
  t.eq(report.shares({ 0, 0 }), nil)
  -- single ratios round half up: 3/80 = 3.75% -> 3.8, 4/120 = 3.33% -> 3.3
  t.eq(report.ratio(3, 80), 38)
  t.eq(report.ratio(4, 120), 33)
  t.eq(report.ratio(2, 7), 286)
  t.eq(report.ratio(1, 0), nil)
end)

test("the county's table as text, aligned, for today", function(t)
  county(t)
  t.clock.set("2026-11-29 10:00")
  t.eq(host.calendar.term("2026-11-29").name, "2026秋", "the demo county's calendar")
  local status, out, err = t.command("report", {})
  t.eq(err, "")
  t.eq(status, 0)
  local want = {
    "留守儿童统计表 (全县) 2026-11-29",
    "学期 2026秋 (2026-09-01 至 2027-01-22)，本月 2026-11",
    "",
    "项目" .. sp(19) .. "数量  占比(%)",
    "总体",
    "  在校学生" .. sp(14) .. "200",
    "  留守儿童" .. sp(16) .. "7" .. sp(6) .. "3.5",
    "性别",
    "  男" .. sp(22) .. "4" .. sp(5) .. "57.1",
    "  女" .. sp(22) .. "3" .. sp(5) .. "42.9",
    "监护类型 (主要监护人)",
    "  祖父母" .. sp(18) .. "3" .. sp(5) .. "42.8",
    "  外祖父母" .. sp(16) .. "2" .. sp(5) .. "28.6",
    "  其他" .. sp(20) .. "2" .. sp(5) .. "28.6",
    "学习表现",
    "  好" .. sp(22) .. "3" .. sp(5) .. "42.8",
    "  中" .. sp(22) .. "2" .. sp(5) .. "28.6",
    "  差" .. sp(22) .. "1" .. sp(5) .. "14.3",
    "  未填" .. sp(20) .. "1" .. sp(5) .. "14.3",
    "家访 (2026秋)",
    "  应访" .. sp(20) .. "6",
    "  已访" .. sp(20) .. "3" .. sp(5) .. "50.0",
    "  逾期未访" .. sp(16) .. "2",
    "本月联系 (2026-11)",
    "  写信或通话" .. sp(14) .. "2" .. sp(5) .. "28.6",
    "  联系监护人" .. sp(14) .. "3" .. sp(5) .. "42.9",
    "短信 (2026秋)",
    "  已发出" .. sp(18) .. "4",
    "  已送达" .. sp(18) .. "2",
    "  待重试" .. sp(18) .. "1",
    "  发送失败" .. sp(16) .. "1",
    "  排队中" .. sp(18) .. "1",
    "  计费条数" .. sp(16) .. "5",
    "",
    "各校情况",
    "学校" .. sp(6) .. "在校学生  留守儿童  占比(%)",
    "城关小学" .. sp(7) .. "120" .. sp(9) .. "4" .. sp(6) .. "3.3",
    "河口小学" .. sp(8) .. "80" .. sp(9) .. "3" .. sp(6) .. "3.8",
    "合计" .. sp(11) .. "200" .. sp(9) .. "7" .. sp(6) .. "3.5",
  }
  t.eq(out, table.concat(want, "\n") .. "\n")
end)

local COUNTY_CSV = {
  "分类,项目,数量,百分比",
  "总体,在校学生,200,", "总体,留守儿童,7,3.5",
  "性别,男,4,57.1", "性别,女,3,42.9",
  "监护类型,祖父母,3,42.8", "监护类型,外祖父母,2,28.6", "监护类型,其他,2,28.6",
  "学习表现,好,3,42.8", "学习表现,中,2,28.6", "学习表现,差,1,14.3", "学习表现,未填,1,14.3",
  "家访,应访,6,", "家访,已访,3,50.0", "家访,逾期未访,2,",
  "本月联系,写信或通话,2,28.6", "本月联系,联系监护人,3,42.9",
  "短信,已发出,4,", "短信,已送达,2,", "短信,待重试,1,", "短信,发送失败,1,", "短信,排队中,1,",
  "短信,计费条数,5,",
  "各校在校学生,城关小学,120,", "各校在校学生,河口小学,80,",
  "各校留守儿童,城关小学,4,3.3", "各校留守儿童,河口小学,3,3.8",
}

test("the county's table as CSV, one row per figure", function(t)
  county(t)
  local status, out = t.command("report", { "--format", "csv", "--date", "2026-11-29" })
  t.eq(status, 0)
  t.eq(out, table.concat(COUNTY_CSV, "\r\n") .. "\r\n")
end)

test("one school: its own shares, ties broken by order, no per-school lines", function(t)
  county(t)
  local status, out = t.command("report", { "--school", "河口小学", "--format=csv", "--date", "2026-11-29" })
  t.eq(status, 0)
  -- 河口: 5 (M, paternal, good), 6 (F, maternal, medium), 7 (M, father, none).
  -- visits 5mt (overdue) and 6te: 2 due, none done; a call for 5, a
  -- guardian contact for 6: 1/3 each = 33.3. Messages are the county's.
  t.eq(out, table.concat({
    "分类,项目,数量,百分比",
    "总体,在校学生,80,", "总体,留守儿童,3,3.8",
    "性别,男,2,66.7", "性别,女,1,33.3",
    "监护类型,祖父母,1,33.4", "监护类型,外祖父母,1,33.3", "监护类型,其他,1,33.3",
    "学习表现,好,1,33.4", "学习表现,中,1,33.3", "学习表现,差,0,0.0", "学习表现,未填,1,33.3",
    "家访,应访,2,", "家访,已访,0,0.0", "家访,逾期未访,1,",
    "本月联系,写信或通话,1,33.3", "本月联系,联系监护人,1,33.3",
    "短信,已发出,4,", "短信,已送达,2,", "短信,待重试,1,", "短信,发送失败,1,", "短信,排队中,1,",
    "短信,计费条数,5,",
  }, "\r\n") .. "\r\n")
  local _, text = t.command("report", { "--school", "河口小学", "--date", "2026-11-29" })
  t.contains(text, "留守儿童统计表 (河口小学) 2026-11-29\n")
  t.contains(text, "\n短信 (2026秋，全县)\n")
  t.eq(text:find("各校情况", 1, true), nil)
  -- 城关: 4 of 120; visits 1ts 2ts 3ts 1mt: 4 due, 3 done (75.0), 1 overdue.
  local _, csv = t.command("report", { "--school", "城关小学", "--format", "csv", "--date", "2026-11-29" })
  t.contains(csv, "总体,留守儿童,4,3.3\r\n")
  t.contains(csv, "性别,男,2,50.0\r\n性别,女,2,50.0\r\n")
  t.contains(csv, "监护类型,祖父母,2,50.0\r\n监护类型,外祖父母,1,25.0\r\n监护类型,其他,1,25.0\r\n")
  t.contains(csv, "学习表现,好,2,50.0\r\n学习表现,中,1,25.0\r\n学习表现,差,1,25.0\r\n家访,")
  t.contains(csv, "家访,应访,4,\r\n家访,已访,3,75.0\r\n家访,逾期未访,1,\r\n")
  -- a school by its id as well
  local _, by_id = t.command("report", { "--school", "1", "--format", "csv", "--date", "2026-11-29" })
  t.eq(by_id, csv)
end)

test("an active child without a primary guardian is counted as 未填", function(t)
  county(t)
  t.exec("DELETE FROM guardianships WHERE child_id = 4")
  local _, out = t.command("report", { "--format", "csv", "--date", "2026-11-29" })
  -- 3, 2, 1, 1 of 7, as for performance: 42.8 28.6 14.3 14.3
  t.contains(out, "监护类型,祖父母,3,42.8\r\n监护类型,外祖父母,2,28.6\r\n监护类型,其他,1,14.3\r\n"
    .. "监护类型,未填,1,14.3\r\n")
end)

test("--term picks a term by name; the month follows --date", function(t)
  county(t)
  local status, out = t.command("report", { "--term", "2026秋", "--date", "2027-03-10", "--format", "csv" })
  t.eq(status, 0)
  -- on 2027-03-10 every 2026秋 visit is past: 3 not done are overdue
  t.contains(out, "家访,应访,6,\r\n家访,已访,3,50.0\r\n家访,逾期未访,3,\r\n")
  t.contains(out, "本月联系,写信或通话,0,0.0\r\n本月联系,联系监护人,0,0.0\r\n")
  t.contains(out, "短信,已发出,4,\r\n")
  local _, text = t.command("report", { "--term", "2026秋", "--date", "2027-03-10" })
  t.contains(text, "学期 2026秋 (2026-09-01 至 2027-01-22)，本月 2027-03\n")
  -- in the summer the report is about the term just ended
  local _, summer = t.command("report", { "--date", "2027-08-01" })
  t.contains(summer, "学期 2027春 (2027-02-22 至 2027-07-02)，本月 2027-08\n")
  t.contains(summer, "  应访" .. sp(20) .. "0\n")
  -- dates in the forms county forms use
  local _, cn = t.command("report", { "--date", "2026年11月29日" })
  t.contains(cn, "留守儿童统计表 (全县) 2026-11-29\n")
  -- the month runs up to the report's date: a letter of the 20th is not in
  -- a report of the 10th
  local function letters(date)
    local _, csv = t.command("report", { "--date", date, "--format", "csv" })
    return tonumber(csv:match("本月联系,写信或通话,(%d+),"))
  end
  local before10, before29 = letters("2026-11-10"), letters("2026-11-29")
  -- 2 has no letter or call in November yet
  t.exec("INSERT INTO contact_log(child_id, kind, on_date, logged_at) VALUES (2, 'letter', '2026-11-20', 0)")
  t.eq(letters("2026-11-10"), before10)
  t.eq(letters("2026-11-29"), before29 + 1)
  -- a school by its id, as the record commands write it
  local _, by_hash = t.command("report", { "--school", "#1", "--format", "csv", "--date", "2026-11-29" })
  local _, by_name = t.command("report", { "--school", "城关小学", "--format", "csv", "--date", "2026-11-29" })
  t.eq(by_hash, by_name)
end)

test("the HTML page is self-contained, escaped and made for A4", function(t)
  county(t)
  t.exec("UPDATE schools SET name = '河口<小学>&\"分校\"' WHERE id = 2")
  local status, out = t.command("report", { "--format", "html", "--date", "2026-11-29" })
  t.eq(status, 0)
  t.contains(out, "<!DOCTYPE html>")
  t.contains(out, '<meta charset="utf-8">')
  t.contains(out, "<title>留守儿童统计表 (全县) 2026-11-29</title>")
  t.contains(out, "<h1>留守儿童统计表 (全县)</h1>")
  t.contains(out, "@page { size: A4;")
  t.contains(out, "break-inside: avoid")
  t.contains(out, '<tr><td>外祖父母</td><td class="n">2</td><td class="n">28.6</td></tr>')
  t.contains(out, '<tr><td>祖父母</td><td class="n">3</td><td class="n">42.8</td></tr>')
  t.contains(out, '<tr><td>未填</td><td class="n">1</td><td class="n">14.3</td></tr>')
  t.contains(out, '<tr><td>已访</td><td class="n">3</td><td class="n">50.0</td></tr>')
  t.contains(out, '<tr><td>计费条数</td><td class="n">5</td><td class="n"></td></tr>')
  t.contains(out, '<tr class="total"><td>合计</td><td class="n">200</td><td class="n">7</td><td class="n">3.5</td>')
  t.contains(out, "<td>河口&lt;小学&gt;&amp;&quot;分校&quot;</td>")
  t.contains(out, ">河口&lt;小学&gt;&amp;&quot;分校&quot;</text>")
  t.eq(out:find("河口<", 1, true), nil)
  -- charts: inline SVG with the figures; nothing fetched, nothing run
  t.contains(out, "<svg ")
  t.contains(out, ">3 (42.8%)</text>")
  local svgs = 0
  for _ in out:gmatch("<svg ") do svgs = svgs + 1 end
  t.eq(svgs, 6, "gender, guardian, performance, visits, contacts, schools")
  for _, bad in ipairs({ "<script", "src=", "href=", "url(", "@import", "http:", "https:" }) do
    t.eq(out:find(bad, 1, true), nil, bad)
  end
end)

test("usage errors exit 2, an unknown school or term 1, -o writes a file", function(t)
  county(t)
  local status, out, err = t.command("report", { "--bogus" })
  t.eq(status, 2)
  t.eq(out, "")
  t.contains(err, "unknown option --bogus")
  t.contains(err, "usage: yizhan report [--school S]")
  status, out, err = t.command("report", { "--format", "pdf" })
  t.eq(out, "")
  t.eq(status, 2)
  t.contains(err, "--format must be text, csv or html (got 'pdf')")
  status, out, err = t.command("report", { "--school" })
  t.eq(out, "")
  t.eq(status, 2)
  t.contains(err, "--school needs a value")
  status, out, err = t.command("report", { "--school", "没有小学" })
  t.eq(out, "")
  t.eq(status, 1)
  t.contains(err, "no school named '没有小学'")
  status, out, err = t.command("report", { "--term", "1999秋" })
  t.eq(out, "")
  t.eq(status, 1)
  t.contains(err, "no term named '1999秋'")
  status, out, err = t.command("report", { "--date", "2026-02-30" })
  t.eq(out, "")
  t.eq(status, 1)
  t.contains(err, "--date")
  status, out, err = t.command("report", { "-o", "report.html", "--date", "2026-11-29" })
  t.eq(err, "")
  t.eq(status, 0)
  t.eq(out, "")
  local html = t.read("report.html")
  t.contains(html, "<!DOCTYPE html>")
  t.contains(html, "留守儿童统计表")
end)
