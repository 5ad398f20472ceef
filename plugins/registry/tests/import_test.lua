-- Tests of registry import and export (lib/import.lua, lib/export.lua,
-- lib/values.lua) from inside the plugin: the header mapping, the words
-- each column accepts, and export -> import round trips through files in
-- the test's data directory, with the events a change emits. The broken
-- files, encodings and line ends are tests/test_registry.c's.
-- luacheck: globals test host
local import = require("lib.import")
local _ -- what a check does not look at
local values = require("lib.values")

-- Two schools, two children with their cards, a teacher.
local function fixtures(t)
  t.exec([[INSERT INTO schools(id, name, town, enrolment) VALUES
    (1, '阳光小学', '城关镇', 600), (2, '红星小学', '河口镇', 300)]])
  t.exec([[INSERT INTO people(id, ukey, kind, name, phone, school_id, class, role) VALUES
    (1, '王丽|+8613800000001', 'teacher', '王丽', '+8613800000001', 1, '三年级1班', 'teacher'),
    (10, '张大山|+8613912345678', 'parent', '张大山', '+8613912345678', NULL, NULL, NULL),
    (11, '李秀英|child:阳光小学|张小明|2016-03-07', 'parent', '李秀英', NULL, NULL, NULL, NULL),
    (12, '张德福|+8613700001111', 'guardian', '张德福', '+8613700001111', NULL, NULL, NULL)]])
  t.exec([[INSERT INTO children(id, name, gender, birth_date, school_id, class, village, away, away_since,
      status, performance, notes) VALUES
    (1, '张小明', 'M', '2016-03-07', 1, '三年级1班', '李家村', 'both', '2022-02-01', 'active', 'medium',
     '喜欢画画, 也爱"唱歌"'),
    (2, '王小军', 'M', '2015-11-02', 2, '四年级2班', NULL, 'mother', NULL, 'active', NULL, NULL)]])
  t.exec([[INSERT INTO guardianships(child_id, person_id, relation, is_primary, workplace) VALUES
    (1, 10, 'father', 0, '广东东莞'), (1, 11, 'mother', 0, NULL), (1, 12, 'paternal_grandparent', 1, NULL),
    (2, 12, 'other_relative', 1, NULL)]])
end

local function rows(sql)
  local out = {}
  for r in host.db.rows(sql) do out[#out + 1] = r end
  return out
end

test("headers: Chinese or English, any order, '*' marks, near misses named", function(t)
  local ix, name, n = import.map_header("schools", { "在校学生数*", " School ", "乡镇" })
  t.eq(ix, { enrolment = 1, name = 2, town = 3 })
  t.eq(name.enrolment, "在校学生数")
  t.eq(n, 3)
  local bad, errs = import.map_header("schools", { "学校", "在校学生", "村" })
  t.eq(bad, nil)
  t.eq(errs, {
    'unknown column "在校学生" (did you mean 在校学生数?)',
    'unknown column "村" (expected 学校, 乡镇, 在校学生数, or their English names)',
    "missing column 在校学生数 (enrolment)",
  })
  _, errs = import.map_header("people", { "姓名", "类别", "电话", "name" })
  t.eq(errs, { "column name given twice (columns 1 and 4)" })
  -- Empty columns at the end (a spreadsheet's trailing commas) are dropped.
  _, _, n = import.map_header("schools", { "学校", "在校学生数", "", " " })
  t.eq(n, 2)
end)

test("values: every accepted word, and the one export writes", function(t)
  local L = values.lookup
  t.eq({ L(values.gender, "男"), L(values.gender, "Female"), L(values.gender, "M") }, { "M", "F", "M" })
  t.eq({ L(values.away, "双亲"), L(values.away, "父母"), L(values.away, "Mother") }, { "both", "both", "mother" })
  t.eq({ L(values.status, "在册"), L(values.status, "不再留守"), L(values.status, "毕业"),
    L(values.status, "transferred") }, { "active", "returned", "graduated", "transferred" })
  t.eq({ L(values.performance, "较好"), L(values.performance, "一般"), L(values.performance, "较差") },
    { "good", "medium", "poor" })
  for _, w in ipairs({ "爷爷奶奶", "爷爷", "奶奶", "祖父母", "paternal_grandparent" }) do
    t.eq(L(values.relation, w), "paternal_grandparent", w)
  end
  for _, w in ipairs({ "外公外婆", "外公", "外婆", "外祖父母" }) do
    t.eq(L(values.relation, w), "maternal_grandparent", w)
  end
  for _, w in ipairs({ "叔叔", "姑姑", "舅舅", "阿姨", "伯伯", "哥哥", "姐姐", "其他亲属" }) do
    t.eq(L(values.relation, w), "other_relative", w)
  end
  t.eq(L(values.relation, "邻居"), nil)
  t.eq({ L(values.role, "班主任"), L(values.role, "副校长"), L(values.role, "校长") }, { "teacher", "deputy", "head" })
  t.eq(values.role_word("teacher", "三年级1班"), "班主任")
  t.eq(values.role_word("teacher", nil), "教师")
  t.eq({ values.phone_out("+8613800138000"), values.phone_out("+447700900123") }, { "13800138000", "+447700900123" })
  t.eq(import.trim("\t 张小明　 "), "张小明")
end)

test("export then import changes nothing; a changed registry is put back", function(t)
  fixtures(t)
  local status, out, err = t.command("registry export", { "-o", "kids.csv" })
  t.eq(status, 0, err)
  t.eq(out, "")
  t.eq(err, "children: 2 rows written to kids.csv\n")
  local before = rows("SELECT * FROM children ORDER BY id")
  status, out = t.command("registry import", { "kids.csv" })
  t.eq(status, 0)
  t.eq(out, "children: 2 rows: 0 added, 0 changed, 2 unchanged; "
    .. "0 in the registry not in this file (same schools; left as they are)\n")
  -- Nothing changed but the date the school last checked each child: a
  -- file sent in is the term survey's confirmation.
  for _, r in ipairs(before) do r.confirmed_on = "2026-09-01" end
  t.eq(rows("SELECT * FROM children ORDER BY id"), before)
  local ev = t.events()
  t.eq(#ev, 1)
  t.eq(ev[1].topic, "registry.imported")
  t.eq(ev[1].data, { kind = "children", added = 0, changed = 0, left = 0, each = true })
  -- A class and a grandfather's phone changed by hand: the file wins.
  t.exec("UPDATE children SET class = '四年级1班' WHERE id = 1")
  t.exec("UPDATE people SET phone = '+8613700002222', ukey = '张德福|+8613700002222' WHERE id = 12")
  status, out = t.command("registry import", { "kids.csv" })
  t.eq(status, 0)
  t.contains(out, "0 added, 2 changed, 0 unchanged")
  t.eq(host.db.one("SELECT class FROM children WHERE id = 1").class, "三年级1班")
  -- in the file's order: 红星小学 before 阳光小学; then the import's summary
  ev = t.events() -- this test's: the first import's summary, then these
  t.eq(#ev, 4)
  t.eq(ev[4].topic, "registry.imported")
  t.eq(ev[2].topic, "registry.child_changed")
  t.eq(ev[2].data, { child = 2, school = 2, class = "四年级2班", fields = { "guardian_phone" } })
  t.eq(ev[3].data, { child = 1, school = 1, class = "三年级1班", fields = { "class", "guardian_phone" } })
  -- The grandfather with the new number is on no card now, and gone.
  t.eq(host.db.one("SELECT count(*) AS n FROM people WHERE phone = '+8613700002222'").n, 0)
  t.eq(host.db.one("SELECT count(*) AS n FROM people WHERE phone = '+8613700001111'").n, 1)
end)

test("a child whose status is no longer active has left", function(t)
  fixtures(t)
  t.command("registry export", { "-o", "kids.csv" })
  t.exec("UPDATE children SET status = 'returned' WHERE id = 2")
  t.exec("UPDATE children SET status = 'graduated' WHERE id = 1")
  -- the file says both are active: 王小军 and 张小明 come back, no one left
  local _, out = t.command("registry import", { "kids.csv" })
  t.contains(out, "0 added, 2 changed, 0 unchanged")
  local topics = {}
  for _, e in ipairs(t.events()) do topics[#topics + 1] = e.topic end
  t.eq(topics, { "registry.child_changed", "registry.child_changed", "registry.imported" })
  -- now the registry says active and a file made from a changed registry
  -- says otherwise
  t.exec("UPDATE children SET status = 'transferred' WHERE id = 2")
  t.command("registry export", { "-o", "moved.csv" })
  t.exec("UPDATE children SET status = 'active' WHERE id = 2")
  _, out = t.command("registry import", { "moved.csv" })
  t.contains(out, "1 changed (1 of them left: status no longer active)")
  local ev = t.events()
  t.eq(ev[#ev - 1].topic, "registry.child_left")
  t.eq(ev[#ev - 1].data, { child = 2, school = 2, class = "四年级2班", status = "transferred", old_status = "active" })
  t.eq(ev[#ev].data, { kind = "children", added = 0, changed = 1, left = 1, each = true })
end)

test("a file given as --output=FILE is a file of the command line too", function(t)
  fixtures(t)
  t.eq(t.command("registry export", { "-o", "a.csv" }), 0)
  local status, _, err = t.command("registry export", { "--output=b.csv" })
  t.eq(status, 0, err)
  t.ok(#t.read("a.csv") > 100)
  t.eq(t.read("b.csv"), t.read("a.csv"))
end)

test("dry run and export of one school", function(t)
  fixtures(t)
  t.command("registry export", { "-o", "all.csv" })
  t.exec("DELETE FROM guardianships WHERE child_id = 2")
  t.exec("DELETE FROM children WHERE id = 2")
  local status, out = t.command("registry import", { "all.csv", "--dry-run" })
  t.eq(status, 0)
  t.contains(out, "dry run: children: 2 rows: 1 added, 0 changed, 1 unchanged")
  t.eq(host.db.one("SELECT count(*) AS n FROM children").n, 1)
  t.eq(#t.events(), 0)
  status, out = t.command("registry export", { "--school", "阳光小学" })
  t.eq(status, 0)
  t.contains(out, '张小明,男,2016-03-07,阳光小学,三年级1班,李家村,父母,2022-02-01,留守,中,'
    .. '张大山,13912345678,广东东莞,李秀英,,,张德福,祖父母,13700001111,"喜欢画画, 也爱""唱歌"""\r\n')
  t.eq(select(2, out:gsub("\r\n", "")), 2)
end)

test("a bad file changes nothing; --skip-bad keeps the rejects and imports the rest", function(t)
  fixtures(t)
  t.write("kids.csv", table.concat({
    "姓名,性别,出生日期,学校,班级,外出,监护人姓名,监护人关系,监护人电话",
    "李四,男,2016-02-30,阳光小学,一年级1班,父母,李爷,爷爷,13700001112",
    "赵六,女,2016-02-29,红星小学,一年级1班,父母,赵奶奶,奶奶,13700001113",
    "钱七,女,2016-01-01,阳光中学,一年级1班,父母,钱奶奶,外婆,13700001114",
  }, "\n") .. "\n")
  local before = rows("SELECT * FROM children ORDER BY id")
  local status, out, err = t.command("registry import", { "kids.csv" })
  t.eq(status, 1)
  t.eq(out, "")
  t.eq(err, table.concat({
    'kids.csv:2: 出生日期: no such date (got "2016-02-30", expected a date like 2015-03-07)',
    'kids.csv:4: 学校: unknown school (got "阳光中学", expected a school in the registry: did you mean 阳光小学?)',
    "2 bad rows; nothing imported", "" }, "\n"))
  t.eq(rows("SELECT * FROM children ORDER BY id"), before)
  status, out = t.command("registry import", { "kids.csv", "--skip-bad", "rejects.csv" })
  t.eq(status, 0)
  t.contains(out, "children: 3 rows: 1 added, 0 changed, 0 unchanged, 2 bad (skipped, written to rejects.csv)")
  t.eq(t.read("rejects.csv"), table.concat({
    "姓名,性别,出生日期,学校,班级,外出,监护人姓名,监护人关系,监护人电话,错误",
    '李四,男,2016-02-30,阳光小学,一年级1班,父母,李爷,爷爷,13700001112,'
      .. '"出生日期: no such date (got ""2016-02-30"", expected a date like 2015-03-07)"',
    '钱七,女,2016-01-01,阳光中学,一年级1班,父母,钱奶奶,外婆,13700001114,'
      .. '"学校: unknown school (got ""阳光中学"", expected a school in the registry: did you mean 阳光小学?)"',
    "" }, "\r\n"))
  t.eq(host.db.one("SELECT name, class FROM children WHERE id > 2"), { name = "赵六", class = "一年级1班" })
end)

-- The guardianships of a child, "person:relation:primary:workplace".
local function card(child)
  local out = {}
  for r in host.db.rows([[SELECT p.name || ':' || g.relation || ':' || g.is_primary || ':'
      || coalesce(g.workplace, '') AS x FROM guardianships g JOIN people p ON p.id = g.person_id
      WHERE g.child_id = ? ORDER BY g.relation, p.name]], child) do
    out[#out + 1] = r.x
  end
  return out
end

test("a parent's columns left out of the file keep the card's parent; empty ones remove them", function(t)
  fixtures(t)
  local before = { "张大山:father:0:广东东莞", "李秀英:mother:0:", "张德福:paternal_grandparent:1:" }
  t.eq(card(1), before)
  -- No mother's columns, no father's phone or workplace: nothing changed.
  local head = "姓名,性别,出生日期,学校,班级,村,外出,外出时间,状态,学习表现,父亲姓名,监护人姓名,监护人关系,监护人电话,备注"
  local function file(class)
    return table.concat({ head,
      "张小明,男,2016-03-07,阳光小学," .. class .. ',李家村,父母,2022-02-01,留守,中,张大山,张德福,祖父母,13700001111,'
        .. '"喜欢画画, 也爱""唱歌"""',
      "王小军,男,2015-11-02,红星小学,四年级2班,,母亲,,留守,,,张德福,其他亲属,13700001111,", "" }, "\n")
  end
  t.write("kids.csv", file("三年级1班"))
  local status, out, err = t.command("registry import", { "kids.csv" })
  t.eq(status, 0, err)
  t.contains(out, "children: 2 rows: 0 added, 0 changed, 2 unchanged")
  t.eq(card(1), before)
  -- Another class: the card is written again, with the same parents.
  t.write("kids.csv", file("四年级1班"))
  status, out = t.command("registry import", { "kids.csv" })
  t.eq(status, 0)
  t.contains(out, "0 added, 1 changed, 1 unchanged")
  local ev = t.events()
  t.eq(ev[#ev - 1].data, { child = 1, school = 1, class = "四年级1班", fields = { "class" } })
  t.eq(card(1), before)
  t.eq(host.db.one("SELECT phone FROM people WHERE name = '张大山'").phone, "+8613912345678")
  -- The grandfather no longer the guardian, the mother is: the father,
  -- left out, stays, and is still not the primary guardian.
  t.write("kids.csv", "姓名,性别,出生日期,学校,班级,外出,监护人姓名,监护人关系,监护人电话\n"
    .. "张小明,男,2016-03-07,阳光小学,四年级1班,父母,李秀英,母亲,13600001111\n")
  status, out = t.command("registry import", { "kids.csv" })
  t.eq(status, 0)
  t.contains(out, "0 added, 1 changed, 0 unchanged")
  t.eq(card(1), { "张大山:father:0:广东东莞", "李秀英:mother:1:" })
  t.eq(host.db.one("SELECT phone FROM people p JOIN guardianships g ON g.person_id = p.id"
    .. " WHERE g.child_id = 1 AND g.relation = 'mother'").phone, "+8613600001111")
  -- The mother's columns there but empty: no mother on the card.
  t.write("kids.csv", "姓名,性别,出生日期,学校,班级,外出,母亲姓名,母亲电话,监护人姓名,监护人关系,监护人电话\n"
    .. "张小明,男,2016-03-07,阳光小学,四年级1班,父母,,,张德福,祖父母,13700001111\n")
  status, out = t.command("registry import", { "kids.csv" })
  t.eq(status, 0)
  t.contains(out, "0 added, 1 changed, 0 unchanged")
  t.eq(card(1), { "张大山:father:0:广东东莞", "张德福:paternal_grandparent:1:" })
  t.eq(host.db.one("SELECT count(*) AS n FROM people WHERE name = '李秀英'").n, 0)
end)

test("pairings without an end-date column leave ended pairings ended", function(t)
  fixtures(t)
  t.exec([[INSERT INTO people(id, ukey, kind, name, phone) VALUES
    (2, '陈志|+8613800000002', 'volunteer', '陈志', '+8613800000002')]])
  local status, _, err = t.command("registry pair", { "张小明", "陈志", "--since", "2026-03-01" })
  t.eq(status, 0, err)
  status, _, err = t.command("registry unpair", { "张小明", "陈志", "--date", "2026-06-30" })
  t.eq(status, 0, err)
  t.write("pairs.csv", "学生姓名,学校,出生日期,结对人,结对人电话,开始日期\n"
    .. "张小明,阳光小学,2016-03-07,陈志,13800000002,2026-03-01\n"
    .. "张小明,阳光小学,2016-03-07,王丽,13800000001,2026-09-01\n")
  local out
  status, out, err = t.command("registry import", { "pairs.csv", "--kind", "pairings" })
  t.eq(status, 0, err)
  t.contains(out, "pairings: 2 rows: 1 added, 0 changed, 1 unchanged; 0 active pairings in the registry")
  t.eq(rows([[SELECT person_id, since, "until" FROM pairings ORDER BY id]]), {
    { person_id = 2, since = "2026-03-01", ["until"] = "2026-06-30" },
    { person_id = 1, since = "2026-09-01" } })
  -- With the column, an empty end date still reopens it.
  t.write("pairs.csv", "学生姓名,学校,出生日期,结对人,结对人电话,开始日期,结束日期\n"
    .. "张小明,阳光小学,2016-03-07,陈志,13800000002,2026-03-01,\n")
  status, out = t.command("registry import", { "pairs.csv", "--kind", "pairings" })
  t.eq(status, 0)
  t.contains(out, "0 added, 1 changed, 0 unchanged")
  t.eq(host.db.one([[SELECT "until" FROM pairings WHERE person_id = 2]]), {})
end)

test("an option's value is not another option; the rejects are not the input", function(t)
  fixtures(t)
  t.command("registry export", { "-o", "kids.csv" })
  local cases = {
    { { "--skip-bad", "--dry-run", "kids.csv" },
      'registry import: --skip-bad needs a value (got the option "--dry-run")' },
    { { "kids.csv", "--kind", "--dry-run" }, 'registry import: --kind needs a value (got the option "--dry-run")' },
    { { "kids.csv", "--skip-bad", "kids.csv" }, "registry import: --skip-bad: the rejects need a file of their own" },
    { { "kids.csv", "--skip-bad", "./kids.csv" }, "registry import: --skip-bad: the rejects need a file of their own" },
    { { ".//kids.csv", "--skip-bad", "./././kids.csv" }, "the rejects need a file of their own" },
    { { "kids.csv", "-x" }, "registry import: unknown option -x" },
  }
  for _, c in ipairs(cases) do
    local status, out, err = t.command("registry import", c[1])
    t.eq(status, 2, table.concat(c[1], " "))
    t.eq(out, "")
    t.contains(err, c[2])
  end
  local before = t.read("kids.csv")
  local status, _, err = t.command("registry export", { "-o", "--school", "阳光小学" })
  t.eq(status, 2)
  t.contains(err, 'registry export: -o needs a value (got the option "--school")')
  status, _, err = t.command("registry export", { "--school", "-o", "x.csv" })
  t.eq(status, 2)
  t.contains(err, 'registry export: --school needs a value (got the option "-o")')
  -- "-" is standard output
  local out
  status, out = t.command("registry export", { "--kind", "schools", "-o", "-" })
  t.eq(status, 0)
  t.contains(out, "学校,乡镇,在校学生数\r\n")
  t.eq(t.read("kids.csv"), before)
end)

test("a rejects file, fixed, imports: its 错误 column is not data", function(t)
  fixtures(t)
  t.write("kids.csv", table.concat({
    "姓名,性别,出生日期,学校,班级,外出,监护人姓名,监护人关系,监护人电话",
    "李四,男,2016-02-30,阳光小学,一年级1班,父母,李爷,爷爷,13700001112",
    "赵六,女,2016-02-29,红星小学,一年级1班,父母,赵奶奶,奶奶,13700001113",
  }, "\n") .. "\n")
  local status = t.command("registry import", { "kids.csv", "--skip-bad", "rejects.csv" })
  t.eq(status, 0)
  local fixed = t.read("rejects.csv"):gsub("2016%-02%-30,", "2016-02-28,", 1)
  t.write("fixed.csv", fixed)
  local out, err
  status, out, err = t.command("registry import", { "fixed.csv" })
  t.eq(status, 0, err)
  t.eq(err, "")
  t.contains(out, "children: 1 rows: 1 added, 0 changed, 0 unchanged")
  t.eq(host.db.one("SELECT birth_date FROM children WHERE name = '李四'").birth_date, "2016-02-28")
  -- Still bad: the new rejects say what is wrong now, once.
  t.write("fixed.csv", (fixed:gsub("阳光小学", "阳光中学")))
  t.exec("DELETE FROM guardianships WHERE child_id IN (SELECT id FROM children WHERE name = '李四')")
  t.exec("DELETE FROM children WHERE name = '李四'")
  status = t.command("registry import", { "fixed.csv", "--skip-bad", "rejects2.csv" })
  t.eq(status, 0)
  t.eq(t.read("rejects2.csv"), table.concat({
    "姓名,性别,出生日期,学校,班级,外出,监护人姓名,监护人关系,监护人电话,错误",
    '李四,男,2016-02-28,阳光中学,一年级1班,父母,李爷,爷爷,13700001112,'
      .. '"学校: unknown school (got ""阳光中学"", expected a school in the registry: did you mean 阳光小学?)"',
    "" }, "\r\n"))
  -- 错误 anywhere but last is an unknown column, as before
  local _, errs = import.map_header("schools", { "学校", "错误", "在校学生数" })
  t.contains(errs[1], 'unknown column "错误"')
  local ix, _, n, errcol = import.map_header("schools", { "学校", "在校学生数", "Error", "" })
  t.eq({ ix, n, errcol }, { { name = 1, enrolment = 2 }, 2, 3 })
end)

test("events wait for the commit: an import rolled back tells no one", function(t)
  fixtures(t)
  t.command("registry export", { "-o", "kids.csv" })
  t.exec("UPDATE children SET class = '五年级1班' WHERE id = 1")
  t.events()
  -- The import's last statement fails, after the merge.
  t.exec([[CREATE TRIGGER stage_stuck BEFORE DELETE ON registry_stage
    BEGIN SELECT RAISE(ABORT, 'disk on fire'); END]])
  local status, out, err = t.command("registry import", { "kids.csv" })
  t.eq(status, 1)
  t.eq(out, "")
  t.contains(err, "disk on fire")
  t.eq(t.events(), {})
  t.eq(host.db.one("SELECT class FROM children WHERE id = 1").class, "五年级1班")
  t.exec("DROP TRIGGER stage_stuck")
  status = t.command("registry import", { "kids.csv" })
  t.eq(status, 0)
  local topics = {}
  for _, e in ipairs(t.events()) do topics[#topics + 1] = e.topic end
  t.eq(topics, { "registry.child_changed", "registry.imported" })
end)
