-- The registry's tables: the archive and contact card of every child, the
-- people around them, pairings, home visits and the contact log. The rules
-- live in the schema (foreign keys, a CHECK on every enumerated column,
-- uniqueness that survives re-imports), so no code path can store a child
-- with an unknown gender or a third active pairing.
local M = {}

M.tables = {
  "schools", "people", "children", "guardianships", "pairings", "visits",
  "contact_log", "registry_stage",
}

local DATE = "GLOB '[12][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]'"

-- "(col = 'a' OR col = 'b')": an enumeration check. Written with OR, not IN:
-- SQLite 3.40 evaluates a CHECK's IN list at every row for about 0.8 us,
-- which an import of a county's 2.5 million people pays for each column.
local function one_of(col, ...)
  local terms = {}
  for i, v in ipairs({ ... }) do
    local lit = math.type(v) == "integer" and tostring(v) or ("'" .. v .. "'")
    terms[i] = col .. " = " .. lit
  end
  return "(" .. table.concat(terms, " OR ") .. ")"
end

M.migrations = {
  -- 1: schools, with their enrolment (the denominator of every share).
  [[CREATE TABLE schools (
      id        INTEGER PRIMARY KEY,
      name      TEXT NOT NULL UNIQUE CHECK (length(trim(name)) > 0),
      town      TEXT,
      enrolment INTEGER NOT NULL DEFAULT 0 CHECK (typeof(enrolment) = 'integer' AND enrolment >= 0)
  )]],
  -- 2: people: parents, temporary guardians, teachers, volunteers. A
  -- person's identity across imports is ukey: the name and the phone when
  -- there is a phone, else the name and whom they belong to.
  [[CREATE TABLE people (
      id        INTEGER PRIMARY KEY,
      ukey      TEXT NOT NULL UNIQUE,
      kind      TEXT NOT NULL CHECK (]] .. one_of("kind", "parent", "guardian", "teacher", "volunteer") .. [[),
      name      TEXT NOT NULL CHECK (length(trim(name)) > 0),
      phone     TEXT CHECK (phone IS NULL OR phone GLOB '+[1-9]*'),
      school_id INTEGER REFERENCES schools(id),
      class     TEXT,
      role      TEXT CHECK (]] .. one_of("role", "teacher", "head", "deputy") .. [[),
      CHECK (role IS NULL OR kind = 'teacher'),
      CHECK (class IS NULL OR kind = 'teacher')
  )]],
  "CREATE INDEX people_phone ON people(phone) WHERE kind = 'teacher' OR kind = 'volunteer'",
  "CREATE INDEX people_school ON people(school_id, class) WHERE school_id IS NOT NULL",
  -- 3: children: the archive. A child is the same child across re-imports
  -- when the school, the name and the birth date are.
  [[CREATE TABLE children (
      id           INTEGER PRIMARY KEY,
      name         TEXT NOT NULL CHECK (length(trim(name)) > 0),
      gender       TEXT NOT NULL CHECK (]] .. one_of("gender", "M", "F") .. [[),
      birth_date   TEXT NOT NULL CHECK (birth_date ]] .. DATE .. [[),
      school_id    INTEGER NOT NULL REFERENCES schools(id),
      class        TEXT NOT NULL CHECK (length(trim(class)) > 0),
      village      TEXT,
      away         TEXT NOT NULL CHECK (]] .. one_of("away", "father", "mother", "both") .. [[),
      away_since   TEXT CHECK (away_since IS NULL OR away_since ]] .. DATE .. [[),
      status       TEXT NOT NULL DEFAULT 'active'
                   CHECK (]] .. one_of("status", "active", "returned", "graduated", "transferred") .. [[),
      performance  TEXT CHECK (]] .. one_of("performance", "good", "medium", "poor") .. [[),
      notes        TEXT,
      confirmed_on TEXT CHECK (confirmed_on IS NULL OR confirmed_on ]] .. DATE .. [[),
      changed_at   INTEGER NOT NULL DEFAULT 0,
      UNIQUE (school_id, name, birth_date)
  )]],
  "CREATE INDEX children_class ON children(school_id, class, status)",
  "CREATE INDEX children_name ON children(name)",
  -- 4: who is whose contact. One primary guardian per child.
  [[CREATE TABLE guardianships (
      child_id   INTEGER NOT NULL REFERENCES children(id) ON DELETE CASCADE,
      person_id  INTEGER NOT NULL REFERENCES people(id),
      relation   TEXT NOT NULL CHECK (]] .. one_of("relation", "father", "mother",
                   "paternal_grandparent", "maternal_grandparent", "other_relative", "other") .. [[),
      is_primary INTEGER NOT NULL DEFAULT 0 CHECK (]] .. one_of("is_primary", 0, 1) .. [[),
      workplace  TEXT,
      PRIMARY KEY (child_id, person_id)
  ) WITHOUT ROWID]],
  "CREATE UNIQUE INDEX guardianships_primary ON guardianships(child_id) WHERE is_primary = 1",
  "CREATE INDEX guardianships_person ON guardianships(person_id)",
  -- 5: proxy parents: a teacher or volunteer paired with a child, at most
  -- two at a time.
  [[CREATE TABLE pairings (
      id        INTEGER PRIMARY KEY,
      child_id  INTEGER NOT NULL REFERENCES children(id) ON DELETE CASCADE,
      person_id INTEGER NOT NULL REFERENCES people(id),
      since     TEXT NOT NULL CHECK (since ]] .. DATE .. [[),
      "until"   TEXT CHECK ("until" IS NULL OR ("until" ]] .. DATE .. [[ AND "until" >= since))
  )]],
  [[CREATE UNIQUE INDEX pairings_active ON pairings(child_id, person_id) WHERE "until" IS NULL]],
  "CREATE INDEX pairings_person ON pairings(person_id)",
  [[CREATE TRIGGER pairings_two BEFORE INSERT ON pairings
      WHEN NEW."until" IS NULL AND
           (SELECT count(*) FROM pairings WHERE child_id = NEW.child_id AND "until" IS NULL) >= 2
    BEGIN SELECT RAISE(ABORT, 'a child has at most two active pairings'); END]],
  [[CREATE TRIGGER pairings_two_reopen BEFORE UPDATE OF "until" ON pairings
      WHEN NEW."until" IS NULL AND OLD."until" IS NOT NULL AND
           (SELECT count(*) FROM pairings WHERE child_id = NEW.child_id AND "until" IS NULL) >= 2
    BEGIN SELECT RAISE(ABORT, 'a child has at most two active pairings'); END]],
  [[CREATE TRIGGER pairings_kind BEFORE INSERT ON pairings
      WHEN (SELECT kind FROM people WHERE id = NEW.person_id) NOT IN ('teacher', 'volunteer')
    BEGIN SELECT RAISE(ABORT, 'a proxy parent is a teacher or a volunteer'); END]],
  -- 6: home visits. One scheduled visit of each kind per child and term;
  -- ad hoc visits as many as happen.
  [[CREATE TABLE visits (
      id         INTEGER PRIMARY KEY,
      child_id   INTEGER NOT NULL REFERENCES children(id) ON DELETE CASCADE,
      visitor_id INTEGER REFERENCES people(id),
      kind       TEXT NOT NULL CHECK (]] .. one_of("kind", "term_start", "mid_term", "term_end", "ad_hoc") .. [[),
      term       TEXT,
      due        TEXT CHECK (due IS NULL OR due ]] .. DATE .. [[),
      done       TEXT CHECK (done IS NULL OR done ]] .. DATE .. [[),
      notes      TEXT,
      CHECK (kind = 'ad_hoc' OR (term IS NOT NULL AND due IS NOT NULL))
  )]],
  "CREATE UNIQUE INDEX visits_once ON visits(child_id, term, kind) WHERE kind <> 'ad_hoc'",
  "CREATE INDEX visits_open ON visits(due) WHERE done IS NULL",
  -- 7: letters, calls, guardian contacts and talks.
  [[CREATE TABLE contact_log (
      id        INTEGER PRIMARY KEY,
      child_id  INTEGER NOT NULL REFERENCES children(id) ON DELETE CASCADE,
      kind      TEXT NOT NULL CHECK (]] .. one_of("kind", "letter", "call", "guardian_contact", "talk") .. [[),
      on_date   TEXT NOT NULL CHECK (on_date ]] .. DATE .. [[),
      by_id     INTEGER REFERENCES people(id),
      notes     TEXT,
      logged_at INTEGER NOT NULL
  )]],
  "CREATE INDEX contact_log_child ON contact_log(child_id, kind, on_date)",
  "CREATE INDEX contact_log_date ON contact_log(on_date, kind)",
  -- 8: an import in progress (registry import, lib/import.lua), inside
  -- its one transaction: empty outside it. A row of the file is staged at
  -- its line, checked and in canonical form (c1.. per kind, untyped so
  -- numbers stay numbers), or as what is wrong with it (err). The merge's
  -- result rows sit at line - 2^40: the row it matched (id), the fields
  -- that changed (note) and what they replaced (c1..).
  [[CREATE TABLE registry_stage (
      line INTEGER PRIMARY KEY,
      err  TEXT,
      id   INTEGER,
      note TEXT,
      c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12,
      c13, c14, c15, c16, c17, c18, c19, c20, c21, c22, c23, c24
  )]],
}

return M
