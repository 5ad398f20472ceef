-- The registry's CSV formats, shared by import and export: for each kind
-- of file its columns (the Chinese header the county forms use, the
-- English one, whether it is required), and for each enumerated column the
-- words accepted on import and the canonical Chinese word export writes.
-- README.md, "The registry", documents the same tables for people.
local M = {}

-- An enumeration: the canonical Chinese word of each stored value (what
-- export writes), the other words accepted on import, and how an error
-- names what was expected.
local function enum(canon, aliases, expected)
  local from = {}
  for value, word in pairs(canon) do
    from[word] = value
    from[value] = value -- the stored (English) value itself
  end
  for word, value in pairs(aliases) do from[word] = value end
  return { canon = canon, from = from, expected = expected }
end

M.gender = enum({ M = "男", F = "女" },
  { male = "M", female = "F", m = "M", f = "F" }, "男 or 女")

M.away = enum({ father = "父亲", mother = "母亲", both = "父母" },
  { ["双亲"] = "both" }, "父亲, 母亲 or 父母")

M.status = enum(
  { active = "留守", returned = "返乡", graduated = "毕业", transferred = "转学" },
  { ["在册"] = "active", ["不再留守"] = "returned" },
  "留守, 返乡, 毕业 or 转学")

M.performance = enum({ good = "好", medium = "中", poor = "差" },
  { ["较好"] = "good", ["中等"] = "medium", ["一般"] = "medium", ["较差"] = "poor" },
  "好, 中 or 差 (or empty)")

M.relation = enum(
  { father = "父亲", mother = "母亲", paternal_grandparent = "祖父母",
    maternal_grandparent = "外祖父母", other_relative = "其他亲属", other = "其他" },
  { ["爷爷奶奶"] = "paternal_grandparent", ["爷爷"] = "paternal_grandparent",
    ["奶奶"] = "paternal_grandparent", ["外公外婆"] = "maternal_grandparent",
    ["外公"] = "maternal_grandparent", ["外婆"] = "maternal_grandparent",
    ["叔叔"] = "other_relative", ["姑姑"] = "other_relative", ["舅舅"] = "other_relative",
    ["阿姨"] = "other_relative", ["伯伯"] = "other_relative", ["哥哥"] = "other_relative",
    ["姐姐"] = "other_relative" },
  "父亲, 母亲, 祖父母, 外祖父母, 其他亲属 or 其他")

M.person_kind = enum({ teacher = "教师", volunteer = "志愿者" },
  { ["老师"] = "teacher" }, "教师 or 志愿者")

-- A teacher's role. 'teacher' is written 班主任 when the teacher heads a
-- class and 教师 when not (role_word).
M.role = enum({ teacher = "教师", head = "校长", deputy = "分管副校长" },
  { ["班主任"] = "teacher", ["副校长"] = "deputy" }, "班主任, 教师, 校长 or 分管副校长")

function M.role_word(role, class)
  if role == "teacher" and class and class ~= "" then return "班主任" end
  return M.role.canon[role] or ""
end

-- The value an enumeration gives a word, or nil. English words match
-- whatever their case.
function M.lookup(e, word)
  return e.from[word] or e.from[word:lower()]
end

-- A stored phone as people write it: a mainland mobile as its 11 digits,
-- any other number in E.164.
function M.phone_out(phone)
  if phone and phone:sub(1, 3) == "+86" then return phone:sub(4) end
  return phone or ""
end

-- The columns of each kind of file, in the order export writes them. key:
-- the name the code uses (the English header); zh: the Chinese header;
-- required: the header must be there.
local function cols(list)
  for i, c in ipairs(list) do c.index = i end
  return list
end

M.columns = {
  children = cols({
    { key = "name", zh = "姓名", required = true },
    { key = "gender", zh = "性别", required = true },
    { key = "birth_date", zh = "出生日期", required = true },
    { key = "school", zh = "学校", required = true },
    { key = "class", zh = "班级", required = true },
    { key = "village", zh = "村" },
    { key = "away", zh = "外出", required = true },
    { key = "away_since", zh = "外出时间" },
    { key = "status", zh = "状态" },
    { key = "performance", zh = "学习表现" },
    { key = "father_name", zh = "父亲姓名" },
    { key = "father_phone", zh = "父亲电话" },
    { key = "father_workplace", zh = "父亲务工地" },
    { key = "mother_name", zh = "母亲姓名" },
    { key = "mother_phone", zh = "母亲电话" },
    { key = "mother_workplace", zh = "母亲务工地" },
    { key = "guardian_name", zh = "监护人姓名", required = true },
    { key = "guardian_relation", zh = "监护人关系", required = true },
    { key = "guardian_phone", zh = "监护人电话", required = true },
    { key = "notes", zh = "备注" },
  }),
  schools = cols({
    { key = "name", zh = "学校", required = true },
    { key = "town", zh = "乡镇" },
    { key = "enrolment", zh = "在校学生数", required = true },
  }),
  people = cols({
    { key = "name", zh = "姓名", required = true },
    { key = "kind", zh = "类别", required = true },
    { key = "phone", zh = "电话", required = true },
    { key = "school", zh = "学校" },
    { key = "class", zh = "班级" },
    { key = "role", zh = "职务" },
  }),
  pairings = cols({
    { key = "child", zh = "学生姓名", required = true },
    { key = "school", zh = "学校", required = true },
    { key = "birth_date", zh = "出生日期", required = true },
    { key = "person", zh = "结对人", required = true },
    { key = "person_phone", zh = "结对人电话", required = true },
    { key = "since", zh = "开始日期", required = true },
    { key = "until", zh = "结束日期" },
  }),
}

-- Other spellings of English headers.
M.header_aliases = {
  children = { birthday = "birth_date", birth = "birth_date", school_name = "school" },
  schools = { school = "name", students = "enrolment", enrollment = "enrolment" },
  people = { type = "kind" },
  pairings = { child_name = "child", proxy = "person", proxy_phone = "person_phone" },
}

M.kinds = { "children", "schools", "people", "pairings" }

-- The header row export writes.
function M.header(kind)
  local h = {}
  for i, c in ipairs(M.columns[kind]) do h[i] = c.zh end
  return h
end

return M
