-- Tests of broadcast: 'yizhan test broadcast'. The command runs as the CLI
-- would (t.command), on fixtures written as the host; each test's rows,
-- queued messages included, are rolled back after it.
-- luacheck: globals test host

-- 城关小学: 张爷爷 is the primary guardian of two children (张小明, 张小红),
-- whose father and mother are away with phones; 王芳's grandmother has no
-- phone. 河口小学: 李红's grandmother. 刘洋 has come home (returned): his
-- family gets nothing. Teachers: 王丽 and 陈静 with phones, 赵敏 without.
local function fixtures(t)
  t.exec([[INSERT INTO schools(id, name, town, enrolment) VALUES
           (1, '城关小学', '城关镇', 800), (2, '河口小学', '河口镇', 300)]])
  t.exec([[INSERT INTO children(id, name, gender, birth_date, school_id, class, away, status) VALUES
    (1, '张小明', 'M', '2017-03-05', 1, '三(1)班', 'both', 'active'),
    (2, '张小红', 'F', '2015-05-05', 1, '五(1)班', 'both', 'active'),
    (3, '李红', 'F', '2017-06-01', 2, '三(1)班', 'father', 'active'),
    (4, '王芳', 'F', '2016-01-01', 1, '四(2)班', 'mother', 'active'),
    (5, '刘洋', 'M', '2017-01-01', 1, '三(1)班', 'both', 'returned')]])
  t.exec([[INSERT INTO people(id, ukey, kind, name, phone, school_id, class, role) VALUES
    (20, 'g:张爷爷', 'guardian', '张爷爷', '+8613900000001', NULL, NULL, NULL),
    (21, 'g:李奶奶', 'guardian', '李奶奶', '+8613900000002', NULL, NULL, NULL),
    (22, 'g:王外婆', 'guardian', '王外婆', NULL, NULL, NULL, NULL),
    (23, 'p:张建国', 'parent', '张建国', '+8613900000003', NULL, NULL, NULL),
    (24, 'p:刘梅', 'parent', '刘梅', '+8613900000004', NULL, NULL, NULL),
    (25, 'g:刘爷爷', 'guardian', '刘爷爷', '+8613900000005', NULL, NULL, NULL),
    (26, 'p:李军', 'parent', '李军', NULL, NULL, NULL, NULL),
    (10, 't:王丽', 'teacher', '王丽', '+8613800000010', 1, '三(1)班', 'teacher'),
    (11, 't:赵敏', 'teacher', '赵敏', NULL, 1, NULL, 'head'),
    (13, 't:陈静', 'teacher', '陈静', '+8613800000013', 2, '三(1)班', 'teacher')]])
  t.exec([[INSERT INTO guardianships(child_id, person_id, relation, is_primary) VALUES
    (1, 20, 'paternal_grandparent', 1), (2, 20, 'paternal_grandparent', 1),
    (1, 23, 'father', 0), (1, 24, 'mother', 0), (2, 23, 'father', 0), (2, 24, 'mother', 0),
    (3, 21, 'maternal_grandparent', 1), (3, 26, 'father', 0),
    (4, 22, 'maternal_grandparent', 1),
    (5, 25, 'paternal_grandparent', 1)]])
end

local LETTER = "{{child}}的家长您好：寒假将至，请提醒孩子注意安全。"

local function outbox(t)
  return t.one("SELECT count(*) AS n FROM yz_outbox WHERE plugin = 'broadcast'").n
end

test("the preview counts the families, per school, with an example; 'no' sends nothing", function(t)
  fixtures(t)
  local status, out, err = t.command("broadcast", { "--text", LETTER, "--to", "guardians" },
                                     { input = "no\n" })
  t.eq(status, 1)
  t.eq(out, table.concat({
    "广播预览",
    "  发送对象: 监护人（在册留守儿童的主要监护人）",
    "  学校: 全部",
    "  收件人: 2 人（每个号码一条）",
    "  无手机号: 1 人（不发送）",
    "  按学校:",
    "    城关小学  1",
    "    河口小学  1",
    "  示例（发给 张*明的监护人，139****0001）:",
    "    张*明、张*红的家长您好：寒假将至，请提醒孩子注意安全。",
    "  短信条数: 每条 1 条，共 2 条",
    "  发送时间: 立即（夜间免打扰时段内的短信顺延到早上）",
    "已取消，没有发送。",
    "" }, "\n"))
  t.eq(err, "发送给 2 人？输入 yes 确认: ")
  t.eq(outbox(t), 0)
end)

test("'yes' queues one message per number; a guardian of two children gets one", function(t)
  fixtures(t)
  local status, out = t.command("broadcast", { "--text", LETTER, "--to", "guardians" },
                                { input = "yes\n" })
  t.eq(status, 0)
  t.contains(out, "已加入发送队列: 2 条")
  t.contains(out, "already queued: 0")
  t.advance("1m")
  local sent = t.sent()
  t.eq(#sent, 2)
  t.eq(sent[1].to, "+8613900000001")
  t.eq(sent[1].text, "张*明、张*红的家长您好：寒假将至，请提醒孩子注意安全。")
  t.eq(sent[2].to, "+8613900000002")
  t.eq(sent[2].text, "李*的家长您好：寒假将至，请提醒孩子注意安全。")
  -- The key names the broadcast and the person (never the number: the
  -- core publishes keys unmasked in its message events and logs).
  local id = sent[1].key:match("^broadcast:(%x+):20$")
  t.ok(id, "the key names the broadcast and the person: " .. sent[1].key)
  t.eq(sent[2].key, "broadcast:" .. id .. ":21")
  local audit = t.one("SELECT action, subject, detail FROM yz_audit WHERE actor = 'broadcast'")
  t.eq(audit.action, "broadcast")
  t.eq(audit.subject, id)
  t.eq(host.json.decode(audit.detail), { to = "guardians", school = host.json.null, recipients = 2,
                                         queued = 2, already_queued = 0, no_phone = 1, parts = 2,
                                         template = host.json.null, not_before = host.json.null })
end)

test("the same broadcast run twice queues once", function(t)
  fixtures(t)
  local args = { "--text", LETTER, "--to", "guardians", "--yes" }
  t.eq((t.command("broadcast", args)), 0)
  local status, out = t.command("broadcast", args)
  t.eq(status, 0)
  t.contains(out, "已加入发送队列: 0 条")
  t.contains(out, "already queued: 2（此前已加入队列，不重复发送）")
  t.eq(outbox(t), 2)
  -- With an explicit key, too.
  t.eq((t.command("broadcast", { "--text", LETTER, "--to", "guardians", "--yes", "--key", "winter" })), 0)
  t.eq((t.command("broadcast", { "--text", LETTER, "--to", "guardians", "--yes", "--key", "winter" })), 0)
  t.eq(outbox(t), 4)
  t.eq(t.one("SELECT count(*) AS n FROM yz_outbox WHERE key LIKE 'broadcast:winter:%'").n, 2)
end)

test("--yes skips the question; without it and without an answer nothing is sent", function(t)
  fixtures(t)
  local status, _, err = t.command("broadcast", { "--text", LETTER, "--to", "guardians" })
  t.eq(status, 1)
  t.contains(err, "no answer on standard input, nothing sent (not at a terminal? add --yes")
  t.eq(outbox(t), 0)
  status, _, err = t.command("broadcast", { "--text", LETTER, "--to", "guardians", "--yes" })
  t.eq(status, 0)
  t.eq(err, "")
  t.eq(outbox(t), 2)
end)

test("--school keeps to one school's families", function(t)
  fixtures(t)
  local status, out = t.command("broadcast", { "--text", LETTER, "--to", "guardians",
                                               "--school", "河口小学", "--yes" })
  t.eq(status, 0)
  t.contains(out, "  学校: 河口小学\n  收件人: 1 人（每个号码一条）\n  无手机号: 0 人（不发送）\n"
                  .. "  按学校:\n    河口小学  1\n")
  t.advance("1m")
  local sent = t.sent()
  t.eq(#sent, 1)
  t.eq(sent[1].to, "+8613900000002")
  local _, _, err = t.command("broadcast", { "--text", LETTER, "--to", "guardians", "--school", "山前小学" })
  t.eq(err, "broadcast: no school named '山前小学'\n")
end)

test("parents are the fathers and mothers with phones; teachers are the teachers", function(t)
  fixtures(t)
  local status, out = t.command("broadcast", { "--text", "{{name}}您好：{{child}}所在学校寒假安排已发布。",
                                               "--to", "parents", "--yes" })
  t.eq(status, 0)
  t.contains(out, "  收件人: 2 人（每个号码一条）\n  无手机号: 1 人（不发送）\n")
  t.contains(out, "    张建国您好：张*明、张*红所在学校寒假安排已发布。\n")
  status, out = t.command("broadcast", { "--text", "{{name}}老师：{{school}}明天下午开会。",
                                         "--to", "teachers", "--yes" })
  t.eq(status, 0)
  t.contains(out, "  收件人: 2 人（每个号码一条）\n  无手机号: 1 人（不发送）\n"
                  .. "  按学校:\n    城关小学  1\n    河口小学  1\n")
  t.contains(out, "  示例（发给 王丽，138****0010）:\n    王丽老师：城关小学明天下午开会。\n")
  t.advance("1m")
  local to = {}
  for _, m in ipairs(t.sent()) do to[#to + 1] = m.to end
  t.eq(to, { "+8613900000003", "+8613900000004", "+8613800000010", "+8613800000013" })
end)

test("a long letter counts its SMS parts; --at holds it until then", function(t)
  fixtures(t)
  -- 124 characters after the greeting: 136 for 张*明、张*红 (3 parts of 67),
  -- 132 for 李* (2 parts).
  local long = "{{child}}的家长您好：" .. string.rep("寒假期间请注意防火、防溺水、交通安全。", 6)
    .. "祝全家新春快乐！平安"
  local status, out = t.command("broadcast", { "--text", long, "--to", "guardians", "--yes",
                                               "--at", "2026-12-20 9:00" })
  t.eq(status, 0)
  t.contains(out, "  短信条数: 每条 2–3 条，共 5 条\n")
  t.contains(out, "  发送时间: 2026-12-20 09:00 起\n")
  local first = t.one("SELECT min(next_at) AS t FROM yz_outbox WHERE plugin = 'broadcast'").t
  t.ok(first >= 1797728400000, "not before 2026-12-20 09:00 +08:00")
end)

test("a template goes with its parameters; mistakes show before anything is asked", function(t)
  fixtures(t)
  local status, out = t.command("broadcast", { "--template", "meeting", "--params", "child=各位同学,date=9月10日",
                                               "--to", "teachers", "--yes" })
  t.eq(status, 0)
  t.contains(out, "  模板: meeting（参数: child=各位同学, date=9月10日）\n")
  t.contains(out, "    各位同学的家长您好：9月10日在学校召开家长会，请准时参加。\n")
  t.contains(out, "  短信条数: 每条 1 条，共 2 条\n")
  t.advance("1m")
  local sent = t.sent()
  t.eq(#sent, 2)
  t.eq(sent[1].text, "各位同学的家长您好：9月10日在学校召开家长会，请准时参加。")
  local err
  status, out, err = t.command("broadcast", { "--template", "meeting", "--params", "date=9月10日",
                                            "--to", "teachers" })
  t.eq(status, 2)
  t.contains(err, "child")
  t.eq(out, "")
  t.eq(outbox(t), 2)
  status, out, err = t.command("broadcast", { "--text", "{{child}}的家长您好", "--to", "teachers" })
  t.eq(status, 2)
  t.contains(err, "template: no value for {{child}}")
  t.eq(out, "")
end)

test("usage errors say what is wrong", function(t)
  fixtures(t)
  local status, _, err = t.command("broadcast", { "--text", "你好" })
  t.eq(status, 2)
  t.contains(err, "broadcast: --to is required (guardians, parents or teachers)\nusage: yizhan broadcast ")
  status, _, err = t.command("broadcast", { "--text", "你好", "--template", "meeting", "--to", "parents" })
  t.eq(status, 2)
  t.contains(err, "give --text or --template (one of them)")
  status, _, err = t.command("broadcast", { "--text", "你好", "--to", "everyone" })
  t.eq(status, 2)
  t.contains(err, "--to: expected guardians, parents or teachers, got 'everyone'")
  status, _, err = t.command("broadcast", { "--text", "你好", "--to", "parents", "--at", "tomorrow" })
  t.eq(status, 2)
  t.contains(err, "--at: expected \"YYYY-MM-DD HH:MM\", got 'tomorrow'")
end)

test("a number several people share gets one message, keyed by a hash of it", function(t)
  fixtures(t)
  -- The father's phone is the mother's too.
  t.exec("UPDATE people SET phone = '+8613900000003' WHERE id = 24")
  local args = { "--text", "{{child}}的家长您好：寒假将至。", "--to", "parents", "--yes", "--key", "p1" }
  local status, out = t.command("broadcast", args)
  t.eq(status, 0)
  t.contains(out, "  收件人: 1 人（每个号码一条）\n")
  t.eq((t.command("broadcast", args)), 0)
  t.advance("1m")
  local sent = t.sent()
  t.eq(#sent, 1)
  t.eq(sent[1].to, "+8613900000003")
  t.eq(sent[1].key, "broadcast:p1:" .. host.crypto.sha256_hex("+8613900000003"):sub(1, 16))
  t.eq(sent[1].key:find("13900000003", 1, true), nil)
end)
