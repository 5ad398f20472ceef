-- luacheck: globals host TODAY MONTH1 PREV DUE1 DONE1 DUE2
-- The county of tests/test_report.c, run with `yizhan eval registry` after
-- the test has defined the dates it depends on (the report is of the real
-- today): TODAY, MONTH1 (the 1st of this month), PREV (the last day of the
-- month before), DUE1 and DONE1 (early in the test's term), DUE2 (near its
-- end, after today).
--
-- Two schools, 200 students; nine children, seven still left behind (8 has
-- returned, 9 graduated). The active seven:
--   id school gender guardian (primary)   performance
--   1  城关   M      paternal_grandparent good
--   2  城关   F      paternal_grandparent good
--   3  城关   M      maternal_grandparent medium
--   4  城关   F      other_relative       poor
--   5  河口   M      paternal_grandparent good
--   6  河口   F      maternal_grandparent medium
--   7  河口   M      father               (none)
-- Visits in the term: 1 (done), 2 (overdue), 5 (due after today); 8's is
-- not counted. Contacts this month: a letter for 1, a call for 5, the
-- guardians of 2 and 6; 3's letter was last month, 8 has returned.
local db = host.db
db.exec("INSERT INTO schools(id, name, town, enrolment) VALUES (1, '城关小学', '城关镇', 120)")
db.exec("INSERT INTO schools(id, name, town, enrolment) VALUES (2, '河口小学', '河口乡', 80)")
db.exec("INSERT INTO people(id, ukey, kind, name, school_id, class, role) "
  .. "VALUES (20, 't20', 'teacher', '黄老师', 1, '三年级1班', 'teacher')")
local children = {
  { 1, "张小明", "M", 1, "good", "active", "paternal_grandparent", "张爷爷" },
  { 2, "李红", "F", 1, "good", "active", "paternal_grandparent", "李奶奶" },
  { 3, "王强", "M", 1, "medium", "active", "maternal_grandparent", "王外婆" },
  { 4, "赵丽", "F", 1, "poor", "active", "other_relative", "赵姑姑" },
  { 5, "陈刚", "M", 2, "good", "active", "paternal_grandparent", "陈爷爷" },
  { 6, "刘芳", "F", 2, "medium", "active", "maternal_grandparent", "刘外公" },
  { 7, "周杰", "M", 2, "", "active", "father", "周父" },
  { 8, "吴敏", "F", 2, "good", "returned", "maternal_grandparent", "吴外婆" },
  { 9, "孙磊", "M", 1, "poor", "graduated", "paternal_grandparent", "孙爷爷" },
}
for _, c in ipairs(children) do
  db.exec("INSERT INTO children(id, name, gender, birth_date, school_id, class, away, status, performance) "
    .. "VALUES (?, ?, ?, '2016-05-0' || ?, ?, '三年级1班', 'both', ?, nullif(?, ''))",
    c[1], c[2], c[3], c[1], c[4], c[6], c[5])
  db.exec("INSERT INTO people(id, ukey, kind, name, phone) VALUES (?, ?, 'guardian', ?, ?)",
    c[1], "g" .. c[1], c[8], "+8613800138" .. string.format("%03d", c[1]))
  db.exec("INSERT INTO guardianships(child_id, person_id, relation, is_primary) VALUES (?, ?, ?, 1)",
    c[1], c[1], c[7])
end
local visits = {
  { 1, "term_start", DUE1, DONE1 }, { 2, "term_start", DUE1, "" }, { 5, "term_end", DUE2, "" },
  { 8, "term_start", DUE1, DONE1 },
}
for _, v in ipairs(visits) do
  db.exec("INSERT INTO visits(child_id, visitor_id, kind, term, due, done) "
    .. "VALUES (?, 20, ?, '测试学期', ?, nullif(?, ''))", v[1], v[2], v[3], v[4])
end
local contacts = {
  { 1, "letter", MONTH1 }, { 5, "call", MONTH1 }, { 3, "letter", PREV }, { 8, "letter", MONTH1 },
  { 2, "guardian_contact", MONTH1 }, { 6, "guardian_contact", TODAY },
}
for _, c in ipairs(contacts) do
  db.exec("INSERT INTO contact_log(child_id, kind, on_date, by_id, logged_at) VALUES (?, ?, ?, 20, 0)",
    c[1], c[2], c[3])
end
return "ok"
