-- lib.policy: the small helpers the shipped policy plugins share
-- (letter_reminder, guardian_checkin, guardian_meeting, term_survey,
-- visit_schedule, broadcast). A plugin loads its own copy with
--   local policy = require("lib.policy")
-- A module has no global host: each function that needs the plugin's host
-- (or its options) takes it as an argument.
local M = {}

-- off(v): whether an option is switched off (false, nil or "").
function M.off(v) return v == false or v == nil or v == "" end

-- options(host, over): host.options, with a test's or a caller's overrides
-- (over, when given, falls back to host.options for the rest).
function M.options(host, over)
  if over == nil then return host.options end
  return setmetatable(over, { __index = host.options })
end

-- month_range(month): "2026-10" -> "2026-10-01", "2026-11-01", 10 (the
-- month as a half-open range, and its number); anything else raises an
-- error that blames the caller of the plugin function that called this.
function M.month_range(month)
  local y, m = tostring(month):match("^(%d%d%d%d)%-(%d%d)$")
  y, m = tonumber(y), tonumber(m)
  if not y or m < 1 or m > 12 then
    error(("'%s' is not a month (expected YYYY-MM)"):format(tostring(month)), 3)
  end
  local ny, nm = y, m + 1
  if nm == 13 then ny, nm = y + 1, 1 end
  return ("%04d-%02d-01"):format(y, m), ("%04d-%02d-01"):format(ny, nm), m
end

-- day_of(host, t): "YYYY-MM-DD" of epoch time t (nil: now) in the configured zone.
function M.day_of(host, t)
  local d = host.date(t)
  return ("%04d-%02d-%02d"):format(d.year, d.month, d.day)
end

-- has_terms(host): whether the school calendar has any term (a county
-- without terms in its calendar runs every month).
function M.has_terms(host)
  return host.calendar.next_school_day("1970-01-05") ~= nil
end

-- in_term(host, day): whether a run on 'day' should happen with
-- only_in_term: inside a term of the school calendar, or always when the
-- calendar has no terms.
function M.in_term(host, day)
  if host.calendar.term(day) then return true end
  return not M.has_terms(host)
end

-- child_name(host, o, name): a child's name as an SMS shows it, masked
-- (张*明) unless o.mask_names is off.
function M.child_name(host, o, name)
  if o.mask_names then return host.text.mask_name(name) end
  return name
end

-- message(o, to, key, text_opt, tpl_opt, params): the message host.send
-- takes: the text option o[text_opt] or, when o[tpl_opt] names a config
-- template, that template, with the same parameters (the core fills the
-- text, and leaves out those the county's template does not use), on
-- o.channel unless that is off.
function M.message(o, to, key, text_opt, tpl_opt, params)
  local msg = { to = to, key = key, params = params }
  if not M.off(o.channel) then msg.channel = o.channel end
  if M.off(o[tpl_opt]) then msg.text = o[text_opt] else msg.template = o[tpl_opt] end
  return msg
end

-- send(host, o, to, key, text_opt, tpl_opt, params): sends message(...).
-- Returns true and the outbox row, or false and the error: one bad message
-- does not sink the run.
function M.send(host, o, to, key, text_opt, tpl_opt, params)
  return pcall(host.send, M.message(o, to, key, text_opt, tpl_opt, params))
end

-- first_items(list, max, each): the first 'max' items of a group_concat
-- separated by char(31), each as each(item) makes it.
function M.first_items(list, max, each)
  local items, pos = {}, 1
  while #items < max do
    local stop = list:find("\31", pos, true)
    items[#items + 1] = each(list:sub(pos, (stop or 0) - 1))
    if not stop then break end
    pos = stop + 1
  end
  return items
end

-- month_job(host, what, fn): a monthly cron job's run: fn(day) with the
-- day ("YYYY-MM-DD") of its scheduled time, unless host.options.only_in_term
-- and the school is out (logged: "no <what>", or a warning when the
-- calendar has no term after the day).
function M.month_job(host, what, fn)
  return function(run)
    local day = M.day_of(host, run.scheduled)
    if host.options.only_in_term and not M.in_term(host, day) then
      if host.calendar.next_school_day(day) then
        host.log.info("not in a term of the school calendar: no " .. what, { job = run.job, day = day })
      else
        host.log.warn("the school calendar has no term after this day: add the next terms",
                      { job = run.job, day = day })
      end
      return
    end
    return fn(day)
  end
end

-- term_start_job(host, say, fn): the run on the first day of a term that
-- starts after the 1st of its month (a spring term on 22 February): the 1st
-- fell in the holidays and sent nothing, so the month's messages go now
-- (the keys are per month: never twice). Logs 'say', then fn(day).
function M.term_start_job(host, say, fn)
  return function(run)
    local day = M.day_of(host, run.scheduled)
    if not host.options.only_in_term or day:sub(9) == "01" then return end
    if M.in_term(host, day:sub(1, 8) .. "01") or not M.in_term(host, day) then return end
    host.log.info(say, { job = run.job, day = day })
    return fn(day)
  end
end

return M
