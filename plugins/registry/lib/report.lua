-- `yizhan report`: the table county reports on left-behind children publish,
-- for the county or one school, as text, CSV or a self-contained HTML page
-- that prints on A4.
--
-- The figures: left-behind children (status active) and their share of all
-- students (the schools' enrolment); the children by gender, by the type of
-- their primary guardian and by school performance, each as a count and a
-- percentage, the percentages of a group summing to exactly 100.0 by
-- largest-remainder rounding to one decimal, as published tables do; this
-- term's coverage (home visits done of those due in the term, children with a
-- letter or call and children whose guardian was contacted this month,
-- messages of the term); and, for the county, a line per school.
--
-- The file is divided into: arithmetic (dates, percentages), gathering the
-- figures (SQL), the three renderings, and the command.
local M = {}

local USAGE = "report [--school S] [--term T] [--date D] [--format text|csv|html] [-o FILE]"

-- ------------------------------------------------------------ arithmetic

-- Days since 1970-01-01 of a civil date, and back (H. Hinnant's algorithms).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp + (mp < 10 and 3 or -9)
  return yoe + era * 400 + (m <= 2 and 1 or 0), m, d
end

local function day_of(iso)
  local y, m, d = iso:match("^(%d%d%d%d)-(%d%d)-(%d%d)$")
  return days_from_civil(tonumber(y), tonumber(m), tonumber(d))
end

local function iso_of(day)
  return string.format("%04d-%02d-%02d", civil_from_days(day))
end

-- The epoch second of local midnight starting a day, in the configured zone:
-- start from UTC midnight and correct by what host.date says it is there
-- (twice more, for a zone whose offset changes near that day).
local function local_midnight(host, day)
  local want = day * 86400
  local t = want
  for _ = 1, 3 do
    local d = host.date(t)
    local got = days_from_civil(d.year, d.month, d.day) * 86400 + d.hour * 3600 + d.min * 60 + d.sec
    if got == want then break end
    t = t + (want - got)
  end
  return t
end

-- The term called `name`. The calendar answers only "which term holds this
-- day", so walk the days around the year the name carries (a term name like
-- "2026秋" does), jumping over each term found.
local function term_named(host, name, today)
  local year = tonumber(name:match("(%d%d%d%d)"))
  local from, to
  if year then
    from, to = days_from_civil(year - 1, 1, 1), days_from_civil(year + 1, 12, 31)
  else
    from, to = today - 1100, today + 1100
  end
  local d = from
  while d <= to do
    local t = host.calendar.term(iso_of(d))
    if t and t.name == name then return t end
    d = t and day_of(t["end"]) + 1 or d + 1
  end
  return nil
end

-- The term holding `today`, else the last one that ended within a year (in
-- the summer, the report is about the term just finished), else nil.
local function term_of(host, today)
  for d = today, today - 366, -1 do
    local t = host.calendar.term(iso_of(d))
    if t then return t end
  end
  return nil
end

-- Largest-remainder rounding: the counts' shares of their sum in tenths of
-- a percent, summing to exactly 1000. Each share is first rounded down; the
-- tenths missing go one each to the largest remainders, ties to the earlier
-- item. Integer arithmetic only. An empty group has no shares (nil).
function M.shares(counts)
  local n = 0
  for _, c in ipairs(counts) do n = n + c end
  if n == 0 then return nil end
  local tenths, order, missing = {}, {}, 1000
  for i, c in ipairs(counts) do
    tenths[i] = c * 1000 // n
    missing = missing - tenths[i]
    order[i] = i
  end
  table.sort(order, function(a, b)
    local ra, rb = counts[a] * 1000 % n, counts[b] * 1000 % n
    if ra ~= rb then return ra > rb end
    return a < b
  end)
  for k = 1, missing do tenths[order[k]] = tenths[order[k]] + 1 end
  return tenths
end

-- One ratio in tenths of a percent, rounded half up; nil when n is 0.
function M.ratio(c, n)
  if n == 0 then return nil end
  return (c * 2000 + n) // (2 * n)
end

local function pct(tenths)
  if not tenths then return nil end
  return string.format("%d.%d", tenths // 10, tenths % 10)
end

-- ------------------------------------------------------------ the figures

-- The groups of the table and their rows, in the published order: the
-- key in the data, the label. An optional row shows only when it counts
-- someone.
local GROUPS = {
  { key = "gender", title = "性别", items = { { "M", "男" }, { "F", "女" } } },
  { key = "guardian", title = "监护类型",
    items = { { "paternal_grandparent", "祖父母" }, { "maternal_grandparent", "外祖父母" },
              { "other", "其他" }, { "none", "未填", optional = true } } },
  { key = "performance", title = "学习表现",
    items = { { "good", "好" }, { "medium", "中" }, { "poor", "差" }, { "none", "未填", optional = true } } },
}

-- Runs a query with "{school}" replaced by the school condition (its
-- parameter goes last) or by nothing.
local function query(host, school, sql, ...)
  local args = table.pack(...)
  if school then
    sql = sql:gsub("{school}", function() return " AND c.school_id = ?" end)
    args.n = args.n + 1
    args[args.n] = school.id
  else
    sql = sql:gsub("{school}", "")
  end
  return host.db.rows(sql, table.unpack(args, 1, args.n))
end

local function one(host, school, sql, ...)
  for row in query(host, school, sql, ...) do return row end -- luacheck: ignore 512 (the first row)
end

-- Everything the report shows, as plain data.
local function gather(host, school, today, term)
  local r = { date = iso_of(today), school = school, term = term }
  local y, m = civil_from_days(today)
  r.month = string.format("%04d-%02d", y, m)
  -- the month up to the report's date (a report for the 10th does not count
  -- letters logged on the 20th)
  local month_from, month_to = r.month .. "-01", r.month .. "-31"
  if r.date and r.date < month_to then month_to = r.date end

  host.db.tx(function()
    r.enrolment = (school and host.db.one("SELECT enrolment AS n FROM schools WHERE id = ?", school.id)
                   or host.db.one("SELECT sum(enrolment) AS n FROM schools")).n or 0
    -- One pass over the active children for the total, gender and
    -- performance; one over the primary guardianships (a child without one
    -- is 未填); both use only what an index gives for 1,000,000 children.
    local found = { gender = {}, guardian = {}, performance = {} }
    local function add(t, k, n) t[k] = (t[k] or 0) + n end
    r.active = 0
    for row in query(host, school, [[
        SELECT c.gender AS g, coalesce(c.performance, 'none') AS p, count(*) AS n FROM children c
        WHERE c.status = 'active'{school} GROUP BY 1, 2]]) do
      r.active = r.active + row.n
      add(found.gender, row.g, row.n)
      add(found.performance, row.p, row.n)
    end
    local with_guardian = 0
    for row in query(host, school, [[
        SELECT CASE WHEN g.relation IN ('paternal_grandparent', 'maternal_grandparent') THEN g.relation
                    ELSE 'other' END AS k, count(*) AS n
        FROM guardianships g JOIN children c ON c.id = g.child_id
        WHERE g.is_primary = 1 AND c.status = 'active'{school} GROUP BY 1]]) do
      add(found.guardian, row.k, row.n)
      with_guardian = with_guardian + row.n
    end
    found.guardian.none = r.active - with_guardian

    r.groups = {}
    for _, g in ipairs(GROUPS) do
      local group = { key = g.key, title = g.title, items = {} }
      for _, item in ipairs(g.items) do
        local n = found[g.key][item[1]] or 0
        if n > 0 or not item.optional then
          group.items[#group.items + 1] = { label = item[2], count = n, note = "占留守儿童" }
        end
      end
      local counts = {}
      for i, item in ipairs(group.items) do counts[i] = item.count end
      local tenths = M.shares(counts)
      for i, item in ipairs(group.items) do item.tenths = tenths and tenths[i] end
      r.groups[#r.groups + 1] = group
    end

    if term then
      local v = one(host, school, [[
        SELECT count(*) AS due,
               coalesce(sum(v.done IS NOT NULL AND v.done <= ?), 0) AS done,
               coalesce(sum(v.due < ? AND (v.done IS NULL OR v.done > ?)), 0) AS overdue
        FROM visits v JOIN children c ON c.id = v.child_id
        WHERE c.status = 'active' AND v.due BETWEEN ? AND ?{school}]],
        r.date, r.date, r.date, term.start, term["end"])
      r.visits = v
    end
    local function contacted(kinds)
      return one(host, school, [[
        SELECT count(DISTINCT l.child_id) AS n FROM contact_log l JOIN children c ON c.id = l.child_id
        WHERE l.kind IN (]] .. kinds .. [[) AND l.on_date BETWEEN ? AND ? AND c.status = 'active'{school}]],
        month_from, month_to).n
    end
    r.letters = contacted("'letter', 'call'")
    r.guardians = contacted("'guardian_contact'")

    if not school then
      r.schools = {}
      for row in host.db.rows([[
          SELECT s.name, s.enrolment, count(c.id) AS n FROM schools s
          LEFT JOIN children c ON c.school_id = s.id AND c.status = 'active'
          GROUP BY s.id ORDER BY s.id]]) do
        r.schools[#r.schools + 1] = row
      end
    end
  end)

  if term then
    r.messages = host.outbox.stats({ since = local_midnight(host, day_of(term.start)),
                                     ["until"] = local_midnight(host, day_of(term["end"]) + 1) })
  end
  return r
end

-- The report as sections of rows {label, count, tenths}, shared by the
-- three renderings. A section has a name (the CSV's), a title (with its
-- period) and a chart flag.
local function sections(r)
  local out = {}
  out[#out + 1] = { name = "总体", title = "总体", rows = {
    { label = "在校学生", count = r.enrolment },
    { label = "留守儿童", count = r.active, tenths = M.ratio(r.active, r.enrolment), note = "占在校学生" },
  } }
  for _, g in ipairs(r.groups) do
    local title = g.key == "guardian" and "监护类型 (主要监护人)" or g.title
    out[#out + 1] = { name = g.title, title = title, rows = g.items, chart = true }
  end
  if r.visits then
    local v = r.visits
    out[#out + 1] = { name = "家访", title = "家访 (" .. r.term.name .. ")", rows = {
      { label = "应访", count = v.due },
      { label = "已访", count = v.done, tenths = M.ratio(v.done, v.due), note = "占应访" },
      { label = "逾期未访", count = v.overdue },
    }, chart = true }
  end
  out[#out + 1] = { name = "本月联系", title = "本月联系 (" .. r.month .. ")", rows = {
    { label = "写信或通话", count = r.letters, tenths = M.ratio(r.letters, r.active), note = "占留守儿童" },
    { label = "联系监护人", count = r.guardians, tenths = M.ratio(r.guardians, r.active), note = "占留守儿童" },
  }, chart = true }
  if r.messages then
    local s = setmetatable({}, { __index = function(_, k) return r.messages[k] or 0 end })
    out[#out + 1] = { name = "短信", title = "短信 (" .. r.term.name .. (r.school and "，全县" or "") .. ")", rows = {
      { label = "已发出", count = s.sent + s.delivered },
      { label = "已送达", count = s.delivered },
      { label = "待重试", count = s.failed },
      { label = "发送失败", count = s.dead },
      { label = "排队中", count = s.queued + s.sending },
      { label = "计费条数", count = s.parts },
    } }
  end
  return out
end

local function scope_name(r)
  return r.school and r.school.name or "全县"
end

local function title_of(r)
  return "留守儿童统计表 (" .. scope_name(r) .. ") " .. r.date
end

local function period_of(r)
  local s = ""
  if r.term then
    s = "学期 " .. r.term.name .. " (" .. r.term.start .. " 至 " .. r.term["end"] .. ")，"
  end
  return s .. "本月 " .. r.month
end

-- ------------------------------------------------------------ text

local function render_text(host, r)
  local width = host.text.width
  local function left(s, w) return s .. string.rep(" ", w - width(s)) end
  local function right(s, w) return string.rep(" ", w - width(s)) .. s end

  local secs = sections(r)
  local lw, cw, pw = width("项目"), width("数量"), width("占比(%)")
  for _, s in ipairs(secs) do
    lw = math.max(lw, width(s.title))
    for _, row in ipairs(s.rows) do
      lw = math.max(lw, 2 + width(row.label))
      cw = math.max(cw, #tostring(row.count))
    end
  end
  local lines = { title_of(r), period_of(r), "" }
  local function line(a, b, c)
    lines[#lines + 1] = (left(a, lw) .. "  " .. right(b, cw) .. "  " .. right(c, pw)):gsub("%s+$", "")
  end
  line("项目", "数量", "占比(%)")
  for _, s in ipairs(secs) do
    lines[#lines + 1] = s.title
    for _, row in ipairs(s.rows) do
      line("  " .. row.label, tostring(row.count), pct(row.tenths) or (row.note and "—" or ""))
    end
  end
  if r.schools then
    local total = { name = "合计", enrolment = r.enrolment, n = r.active }
    local heads = { "学校", "在校学生", "留守儿童", "占比(%)" }
    local w = { width(heads[1]), width(heads[2]), width(heads[3]), width(heads[4]) }
    local rows = {}
    for _, s in ipairs(r.schools) do rows[#rows + 1] = s end
    rows[#rows + 1] = total
    local cells = {}
    for i, s in ipairs(rows) do
      cells[i] = { s.name, tostring(s.enrolment), tostring(s.n), pct(M.ratio(s.n, s.enrolment)) or "—" }
      for k = 1, 4 do w[k] = math.max(w[k], width(cells[i][k])) end
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = "各校情况"
    local function row(c)
      lines[#lines + 1] = left(c[1], w[1]) .. "  " .. right(c[2], w[2]) .. "  " .. right(c[3], w[3])
        .. "  " .. right(c[4], w[4])
    end
    row(heads)
    for _, c in ipairs(cells) do row(c) end
  end
  return table.concat(lines, "\n") .. "\n"
end

-- ------------------------------------------------------------ CSV

local function csv_field(s)
  s = tostring(s)
  if s:find('[,"\r\n]') or s:find("^%s") or s:find("%s$") then
    return '"' .. s:gsub('"', '""') .. '"'
  end
  return s
end

local function render_csv(r)
  local rows = { { "分类", "项目", "数量", "百分比" } }
  for _, s in ipairs(sections(r)) do
    for _, row in ipairs(s.rows) do
      rows[#rows + 1] = { s.name, row.label, row.count, pct(row.tenths) or "" }
    end
  end
  if r.schools then
    for _, s in ipairs(r.schools) do rows[#rows + 1] = { "各校在校学生", s.name, s.enrolment, "" } end
    for _, s in ipairs(r.schools) do
      rows[#rows + 1] = { "各校留守儿童", s.name, s.n, pct(M.ratio(s.n, s.enrolment)) or "" }
    end
  end
  local out = {}
  for i, row in ipairs(rows) do
    local f = {}
    for k, v in ipairs(row) do f[k] = csv_field(v) end
    out[i] = table.concat(f, ",")
  end
  return table.concat(out, "\r\n") .. "\r\n"
end

-- ------------------------------------------------------------ HTML

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }
local function esc(s) return (tostring(s):gsub("[&<>\"']", ESC)) end

local CSS = [[
@page { size: A4; margin: 15mm 15mm 14mm; }
* { box-sizing: border-box; }
body { font-family: "WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei",
       "PingFang SC", sans-serif; color: #222; font-size: 10pt; margin: 0 auto; max-width: 180mm;
       -webkit-print-color-adjust: exact; print-color-adjust: exact; }
h1 { font-size: 16pt; text-align: center; margin: 0 0 1.5mm; }
p.meta { text-align: center; color: #555; margin: 0 0 5mm; }
section { break-inside: avoid; page-break-inside: avoid; margin: 0 0 4.5mm; }
h2 { font-size: 11.5pt; border-bottom: 1.5px solid #3a6ea5; padding-bottom: 0.8mm; margin: 0 0 2mm;
     break-after: avoid; page-break-after: avoid; }
.row { display: flex; gap: 7mm; align-items: flex-start; }
table { border-collapse: collapse; break-inside: avoid; page-break-inside: avoid; }
table.fig { width: 80mm; flex: none; }
table.schools { width: 100%; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
th, td { border: 1px solid #bbb; padding: 0.7mm 2.5mm; white-space: nowrap; }
th { background: #e8eef6; font-weight: bold; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; background: #f4f4f4; }
div.chart { margin-top: 3mm; }
svg { flex: none; display: block; break-inside: avoid; page-break-inside: avoid; }
svg text { font-size: 11px; fill: #222; }
svg .bar { fill: #3a6ea5; }
svg .axis { stroke: #999; stroke-width: 1; }
]]

-- A horizontal bar chart: items {label, tenths, text}, bars scaled to
-- `max` tenths (1000 for the shares of a group). The label column is as
-- wide as the longest label.
local function svg_bars(items, max)
  local lw = 24
  for _, it in ipairs(items) do lw = math.max(lw, utf8.len(it.label) * 11 + 10) end
  local bw, rh, tw = 170, 22, 96
  local w, h = lw + bw + tw, #items * rh + 6
  local out = { string.format('<svg width="%d" height="%d" viewBox="0 0 %d %d" role="img">', w, h, w, h) }
  for i, it in ipairs(items) do
    local y = (i - 1) * rh + 3
    local len = (max and max > 0) and (it.tenths or 0) * bw / max or 0
    out[#out + 1] = string.format('<text x="%d" y="%d" text-anchor="end">%s</text>', lw - 6, y + 15, esc(it.label))
    out[#out + 1] = string.format('<rect class="bar" x="%d" y="%d" width="%.1f" height="%d"/>',
      lw, y + 3, len, rh - 8)
    out[#out + 1] = string.format('<text x="%.1f" y="%d">%s</text>', lw + len + 4, y + 15, esc(it.text))
  end
  out[#out + 1] = string.format('<line class="axis" x1="%d" y1="0" x2="%d" y2="%d"/>', lw, lw, h)
  out[#out + 1] = "</svg>"
  return table.concat(out)
end

local SCHOOLS_PER_CHART = 30 -- an SVG cannot break across pages: keep each under one

local function render_html(r)
  local title = title_of(r)
  local out = { '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n<title>',
    esc(title), "</title>\n<style>\n", CSS, "</style>\n</head>\n<body>\n",
    "<h1>", esc("留守儿童统计表 (" .. scope_name(r) .. ")"), "</h1>\n",
    '<p class="meta">', esc("统计日期 " .. r.date .. "　" .. period_of(r)), "</p>\n" }
  local function add(...) for _, s in ipairs({ ... }) do out[#out + 1] = s end end

  for _, s in ipairs(sections(r)) do
    add("<section>\n<h2>", esc(s.title), '</h2>\n<div class="row">\n<table class="fig">\n',
      '<thead><tr><th>项目</th><th class="n">数量</th><th class="n">占比(%)</th></tr></thead>\n<tbody>\n')
    local bars = {}
    for _, row in ipairs(s.rows) do
      local p = pct(row.tenths)
      add("<tr><td>", esc(row.label), '</td><td class="n">', esc(row.count), '</td><td class="n">',
        esc(p or (row.note and "—" or "")), "</td></tr>\n")
      if p then
        bars[#bars + 1] = { label = row.label, tenths = row.tenths, text = row.count .. " (" .. p .. "%)" }
      end
    end
    add("</tbody>\n</table>\n")
    if s.chart and #bars > 0 then add(svg_bars(bars, 1000), "\n") end
    add("</div>\n</section>\n")
  end

  if r.schools then
    -- Many schools make a long table: it may run onto the next page, with
    -- its header repeated; each chart of up to 30 schools stays whole.
    add('<section class="schools">\n<h2>各校情况</h2>\n<table class="schools">\n',
      '<thead><tr><th>学校</th><th class="n">在校学生</th><th class="n">留守儿童</th><th class="n">占比(%)</th>',
      "</tr></thead>\n<tbody>\n")
    local bars, max = {}, 0
    for _, s in ipairs(r.schools) do
      local t = M.ratio(s.n, s.enrolment)
      add("<tr><td>", esc(s.name), '</td><td class="n">', esc(s.enrolment), '</td><td class="n">', esc(s.n),
        '</td><td class="n">', esc(pct(t) or "—"), "</td></tr>\n")
      bars[#bars + 1] = { label = s.name, tenths = t, text = (pct(t) or "—") .. "%" }
      max = math.max(max, t or 0)
    end
    add('<tr class="total"><td>合计</td><td class="n">', esc(r.enrolment), '</td><td class="n">', esc(r.active),
      '</td><td class="n">', esc(pct(M.ratio(r.active, r.enrolment)) or "—"), "</td></tr>\n</tbody>\n</table>\n")
    for i = 1, #bars, SCHOOLS_PER_CHART do
      add('<div class="chart">', svg_bars(table.move(bars, i, math.min(i + SCHOOLS_PER_CHART - 1, #bars), 1, {}), max),
        "</div>\n")
    end
    add("</section>\n")
  end
  add("</body>\n</html>\n")
  return table.concat(out)
end

-- ------------------------------------------------------------ the command

-- The command line, read by cmd.options: "--format csv" and "--format=csv";
-- a value is never another option.
local function parse(cmd)
  local opts, rest = cmd.options({ school = "value", term = "value", date = "value", format = "value",
                                   o = "value", output = "value" })
  if not opts then return nil, rest end
  if opts.help then return { help = true } end
  if rest[1] then return nil, "unknown argument '" .. rest[1] .. "'" end
  local o = { school = opts.school, term = opts.term, date = opts.date, format = opts.format,
              output = opts.o or opts.output }
  if not o.format and o.output then
    o.format = o.output:match("%.[Hh][Tt][Mm][Ll]?$") and "html" or o.output:match("%.[Cc][Ss][Vv]$") and "csv"
  end
  o.format = o.format or "text"
  if o.format ~= "text" and o.format ~= "csv" and o.format ~= "html" then
    return nil, "--format must be text, csv or html (got '" .. o.format .. "')"
  end
  return o
end

-- Builds the report for options `o` (as parse gives them) and returns it as
-- a string in o.format. Raises on an unknown school, date or term.
function M.build(host, o)
  local today
  if o.date then
    local d, err = host.text.date(o.date)
    if not d then error("--date: " .. tostring(err), 0) end
    today = day_of(d)
  else
    local t = host.date()
    today = days_from_civil(t.year, t.month, t.day)
  end
  local school
  if o.school then
    school = host.db.one("SELECT id, name FROM schools WHERE name = ?", o.school)
    local id = o.school:match("^#?(%d+)$") -- an id, as the record commands take it
    if not school and id then
      school = host.db.one("SELECT id, name FROM schools WHERE id = ?", tonumber(id))
    end
    if not school then error("no school named '" .. o.school .. "'", 0) end
  end
  local term
  if o.term then
    term = term_named(host, o.term, today)
    if not term then error("no term named '" .. o.term .. "' in the calendar", 0) end
  else
    term = term_of(host, today)
  end
  local r = gather(host, school, today, term)
  if o.format == "csv" then return render_csv(r) end
  if o.format == "html" then return render_html(r) end
  return render_text(host, r)
end

function M.setup(host)
  host.command("report", {
    usage = USAGE,
    help = "留守儿童统计表: counts and shares for the county or one school, as text, CSV or HTML",
    run = function(cmd)
      local o, err = parse(cmd)
      if not o then
        cmd.err("yizhan: report: " .. err)
        cmd.err("usage: yizhan " .. USAGE)
        return 2
      end
      if o.help then
        cmd.print("usage: yizhan " .. USAGE)
        return 0
      end
      local text = M.build(host, o)
      if not o.output or o.output == "-" then
        cmd.out(text)
        return 0
      end
      local w, werr = cmd.create(o.output, { bom = o.format == "csv" })
      if not w then error(tostring(werr), 0) end
      local ok, e = pcall(w.write, w, text)
      if not ok then
        w:abort()
        error(e, 0)
      end
      w:close()
      return 0
    end,
  })
end

return M
