-- Tests of care_notes, run by 'yizhan test care_notes' on a fresh database.
-- luacheck: globals test host add_note summary

test("a note is stored and counted by kind", function(t)
  local id = add_note("张小明", "和妈妈视频通话，情绪稳定", "mood")
  t.ok(id, "add_note returns the new id")
  add_note("张小明", "数学作业需要辅导", "study")
  add_note("李小红", "奶奶腿脚不便", "family")
  t.eq(summary(), { family = 1, mood = 1, study = 1 })
end)

test("a note longer than the limit is refused", function(t)
  local ok, why = add_note("张小明", string.rep("好", host.options.max_length + 1))
  t.eq(ok, nil)
  t.contains(why, "at most " .. host.options.max_length)
  t.eq(summary(), {})
end)

test("an unknown kind is refused and nothing is written", function(t)
  local ok, why = add_note("张小明", "x", "gossip")
  t.eq(ok, nil)
  t.eq(why, "unknown kind 'gossip'")
  t.eq(host.db.one("SELECT count(*) AS n FROM care_notes").n, 0)
end)

test("notes carry the time of the fake clock", function(t)
  t.clock.set("2026-10-08 09:30")
  add_note("王小军", "国庆后返校，状态良好", "general")
  local row = host.db.one("SELECT written_at FROM care_notes")
  t.eq(row.written_at, host.now())
  t.eq(t.now(), "2026-10-08 09:30")
end)

test("setup logs how many notes there are", function(t)
  t.contains(table.concat(t.logs(), "\n"), 'msg="care notes ready" max_length=200 notes=0')
end)

test("the monthly summary counts last month's notes", function(t)
  t.clock.set("2026-10-15 10:00")
  add_note("张小明", "情绪稳定", "mood")
  add_note("李小红", "需要辅导", "study")
  t.logs()
  t.advance("17d") -- past 2026-11-01 08:00
  local log = table.concat(t.logs(), "\n")
  t.contains(log, "monthly care-note summary")
  t.contains(log, "period=2026-11")
  t.contains(log, "notes=2")
end)

test("teachers are reminded three days before the term ends", function(t)
  local review
  for _, job in ipairs(t.jobs()) do
    if job.name == "review_before_visits" then review = job end
  end
  t.ok(review, "the review job is registered")
  t.eq(review.next, "2027-01-19T09:00:00+08:00")
end)

test("the monthly summary goes by SMS once, to the configured number", function(t)
  -- The clock carries on from the tests above: go past them.
  t.clock.set("2027-02-10 10:00")
  add_note("张小明", "情绪稳定", "mood")
  t.clock.set("2027-02-28 23:00")
  t.advance("10h") -- 1 March, 08:00: the summary job runs
  local sent = t.sent()
  t.eq(#sent, 1)
  t.eq(sent[1].to, "+8613800000001")
  t.eq(sent[1].masked, "138****0001")
  t.eq(sent[1].job, "monthly_summary")
  t.eq(sent[1].at, "2027-03-01 08:00")
  t.eq(sent[1].key, "care_notes:summary:2027-03")
  t.contains(sent[1].text, "记录 1 条 (mood=1)")
  t.eq(sent[1].coding, "ucs2")
end)

test("a new note is announced to other plugins", function(t)
  local id = add_note("李小红", "奶奶腿脚不便", "family")
  local ev = t.events()
  t.eq(#ev, 1)
  t.eq(ev[1].topic, "care_notes.added")
  t.eq(ev[1].from, "care_notes")
  t.eq(ev[1].data, { id = id, child = "李小红", kind = "family" })
end)
