-- registry export: the registry back out in the import's CSV formats, in
-- canonical form: the Chinese headers in a fixed order, the canonical
-- Chinese words (lib/values.lua), dates as YYYY-MM-DD, mainland mobiles as
-- their 11 digits, rows in a fixed order. Importing an export changes
-- nothing, and exporting again gives the same bytes.
local args = require("lib.args")
local values = require("lib.values")

local M = {}

local USAGE = "registry export [--kind children|schools|people|pairings] [-o FILE|-] "
  .. "[--encoding utf-8|gbk] [--school S]"

local canon = function(e, v) return v and e.canon[v] or "" end

local queries = {}

-- Children with their contact cards: the father, the mother and the
-- primary guardian (who may be the father or the mother).
queries.children = {
  sql = [[SELECT c.name, c.gender, c.birth_date, s.name AS school, c.class, c.village, c.away,
      c.away_since, c.status, c.performance, c.notes,
      pf.name AS fn, pf.phone AS fp, gf.workplace AS fw,
      pm.name AS mn, pm.phone AS mp, gm.workplace AS mw,
      pg.name AS gn, gg.relation AS gr, pg.phone AS gp
    FROM children c JOIN schools s ON s.id = c.school_id
    LEFT JOIN guardianships gf ON gf.child_id = c.id AND gf.relation = 'father'
    LEFT JOIN people pf ON pf.id = gf.person_id
    LEFT JOIN guardianships gm ON gm.child_id = c.id AND gm.relation = 'mother'
    LEFT JOIN people pm ON pm.id = gm.person_id
    LEFT JOIN guardianships gg ON gg.child_id = c.id AND gg.is_primary = 1
    LEFT JOIN people pg ON pg.id = gg.person_id
    WHERE ?1 IS NULL OR s.id = ?1
    ORDER BY s.name, c.class, c.name, c.birth_date]],
  row = function(r)
    local V, ph = values, values.phone_out
    return { r.name, canon(V.gender, r.gender), r.birth_date, r.school, r.class, r.village or "",
      canon(V.away, r.away), r.away_since or "", canon(V.status, r.status), canon(V.performance, r.performance),
      r.fn or "", ph(r.fp), r.fw or "", r.mn or "", ph(r.mp), r.mw or "",
      r.gn or "", canon(V.relation, r.gr), ph(r.gp), r.notes or "" }
  end,
}

queries.schools = {
  sql = [[SELECT name, town, enrolment FROM schools WHERE ?1 IS NULL OR id = ?1 ORDER BY name]],
  row = function(r) return { r.name, r.town or "", tostring(r.enrolment) } end,
}

queries.people = {
  sql = [[SELECT p.name, p.kind, p.phone, s.name AS school, p.class, p.role
    FROM people p LEFT JOIN schools s ON s.id = p.school_id
    WHERE p.kind IN ('teacher', 'volunteer') AND (?1 IS NULL OR p.school_id = ?1)
    ORDER BY s.name IS NULL, s.name, p.kind, p.class IS NULL, p.class, p.name, p.phone]],
  row = function(r)
    return { r.name, canon(values.person_kind, r.kind), values.phone_out(r.phone), r.school or "",
      r.class or "", values.role_word(r.role, r.class) }
  end,
}

queries.pairings = {
  sql = [[SELECT c.name AS child, s.name AS school, c.birth_date, p.name AS person, p.phone,
      pr.since, pr."until" AS till
    FROM pairings pr JOIN children c ON c.id = pr.child_id JOIN schools s ON s.id = c.school_id
    JOIN people p ON p.id = pr.person_id
    WHERE ?1 IS NULL OR s.id = ?1
    ORDER BY s.name, c.name, c.birth_date, pr.since, p.name, p.phone]],
  row = function(r)
    return { r.child, r.school, r.birth_date, r.person, values.phone_out(r.phone), r.since, r.till or "" }
  end,
}

-- Standard output when no -o is given (the default):
-- cmd.create opens only what the command line names. UTF-8 only; the
-- quoting is cmd.create's.
local function stdout_writer(cmd)
  local function field(s)
    if s:find('[,"\r\n]') or s:find("^%s") or s:find("%s$") then
      return '"' .. s:gsub('"', '""') .. '"'
    end
    return s
  end
  local w = {}
  function w.row(_, fields)
    local t = {}
    for i, f in ipairs(fields) do t[i] = field(f) end
    cmd.out(table.concat(t, ",") .. "\r\n")
  end
  function w.close() end
  function w.abort() end
  return w
end

-- The command line, read by cmd.options (an option's value is never
-- another option: -o --school would write to a file named --school).
-- "-" is standard output.
local function parse_args(cmd)
  local opts, rest = cmd.options({ kind = "value", o = "value", output = "value", encoding = "value",
                                   school = "value" })
  if not opts then error({ usage = rest }) end
  if opts.help then return { help = true } end
  if rest[1] then error({ usage = "unexpected argument " .. rest[1] }) end
  local o = { kind = opts.kind or "children", out = opts.o or opts.output, encoding = opts.encoding or "utf-8",
              school = opts.school }
  if not queries[o.kind] then error({ usage = "--kind: expected children, schools, people or pairings" }) end
  if o.encoding ~= "utf-8" and o.encoding ~= "gbk" then error({ usage = "--encoding: expected utf-8 or gbk" }) end
  return o
end

local function run(host, cmd)
  local o, status = args.read(cmd, "registry export", USAGE, parse_args)
  if not o then return status end
  local school
  if o.school then
    local s = host.db.one("SELECT id FROM schools WHERE name = ?", o.school)
    if not s then
      cmd.err(('registry export: unknown school "%s"'):format(o.school))
      return 1
    end
    school = s.id
  end
  local q = queries[o.kind]
  local w, err
  if o.out then
    w, err = cmd.create(o.out, { encoding = o.encoding })
  elseif o.encoding == "utf-8" then
    w = stdout_writer(cmd)
  else
    err = "--encoding gbk to standard output: give -o -"
  end
  if not w then
    cmd.err("registry export: " .. tostring(err))
    return 1
  end
  local n = 0
  local done, werr = pcall(function()
    w:row(values.header(o.kind))
    for r in host.db.rows(q.sql, school) do
      w:row(q.row(r))
      n = n + 1
    end
  end)
  if not done then
    w:abort()
    error(werr, 0)
  end
  w:close()
  if o.out and o.out ~= "-" then cmd.err(("%s: %d rows written to %s"):format(o.kind, n, o.out)) end
  return 0
end

function M.setup(host)
  host.command("registry export", {
    usage = USAGE,
    help = "writes children (with their contact cards), schools, people or pairings as CSV",
    run = function(cmd) return run(host, cmd) end,
  })
end

return M
