-- care_notes: short notes a class teacher or volunteer keeps about a child's
-- wellbeing between home visits ("情况记录"). A small, complete example of a
-- plugin: a table it owns, a migration, options, a module of its own, and
-- functions IT staff can call with 'yizhan eval care_notes ...'.
-- luacheck: globals add_note summary
local format = require("lib.format")

local host -- set in setup

-- Records a note. Returns the note's id, or nil and the reason.
function add_note(child, text, kind)
  kind = kind or "general"
  local ok, why = format.check(text, kind, host.options)
  if not ok then return nil, why end
  local _, id = host.db.exec(
    "INSERT INTO care_notes(child, kind, body, written_at) VALUES (?, ?, ?, ?)",
    child, kind, text, host.now())
  host.audit("care_note.add", child, kind)
  -- Other policies may follow up (a worrying note before a home visit).
  host.emit("care_notes.added", { id = id, child = child, kind = kind })
  return id
end

-- Counts notes by kind, for a quick look at what teachers record.
function summary()
  local counts = {}
  for row in host.db.rows("SELECT kind, count(*) AS n FROM care_notes GROUP BY kind") do
    counts[row.kind] = row.n
  end
  return counts
end

return {
  name = "care_notes",
  version = "1.0.0",
  description = "教师对留守儿童情况的简短记录 (care notes between home visits)",
  owns = { "care_notes" },
  access = { send = true },                               -- the monthly summary SMS
  options = {
    max_length = 500,                                     -- characters per note
    kinds = { "general", "health", "study", "mood", "family" },
    summary_at = "0 8 1 * *",                             -- the monthly summary
    review_at = "3 days before term.end 09:00",           -- before term-end visits
    summary_to = "",                                      -- who gets the summary by SMS
  },
  migrations = {
    [[CREATE TABLE care_notes (
        id         INTEGER PRIMARY KEY,
        child      TEXT NOT NULL,
        kind       TEXT NOT NULL,
        body       TEXT NOT NULL,
        written_at INTEGER NOT NULL)]],
    "CREATE INDEX care_notes_child ON care_notes(child)",
  },
  setup = function(h, opts)
    host = h
    local n = h.db.one("SELECT count(*) AS n FROM care_notes").n
    h.log.info("care notes ready", { notes = n, max_length = opts.max_length })

    -- On the 1st of each month: how many notes of each kind last month.
    h.cron("monthly_summary", opts.summary_at, function(run)
      local month_start = run.scheduled - 31 * 86400
      local counts, total = {}, 0
      for row in h.db.rows("SELECT kind, count(*) AS n FROM care_notes"
                           .. " WHERE written_at >= ? AND written_at < ? GROUP BY kind",
                           month_start, run.scheduled) do
        counts[#counts + 1] = row.kind .. "=" .. row.n
        total = total + row.n
      end
      h.log.info("monthly care-note summary", { period = run.period, notes = total,
                                                kinds = table.concat(counts, ",") })
      -- The county officer gets it by SMS; the key makes a rerun of this
      -- month's job send nothing twice.
      if opts.summary_to ~= "" then
        h.send {
          to = opts.summary_to,
          key = "care_notes:summary:" .. run.period,
          text = ("%s 留守儿童情况记录 %d 条 (%s)"):format(run.period, total,
                                                  total > 0 and table.concat(counts, ", ") or "无"),
        }
      end
    end)

    -- Before each term-end home visit, teachers reread their notes.
    h.cron("review_before_visits", opts.review_at, function(run)
      h.log.info("review care notes before the term-end home visits", { date = run.period })
    end)
  end,
}
