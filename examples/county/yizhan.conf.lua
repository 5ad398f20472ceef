-- The demo county's configuration (青山县, invented): the registry, the
-- shipped policies and the example plugin, messages written to a file.
-- 'yizhan init' writes a configuration with every option and its default;
-- this one sets only what the county changes. Walkthrough:
-- examples/county/README.md.
timezone  = "Asia/Shanghai"
log_level = "info"

-- The 2026-2027 school year: terms with their mid-term days, the holidays
-- and the Spring Festival. Example dates: use the ones your education
-- bureau publishes. The policies schedule by it (visits at term start,
-- mid-term and term end; no letter reminders in the holidays; the term
-- survey on the first day; the Spring Festival guardians' meeting).
calendar = {
  terms = {
    { name = "2026秋", start = "2026-09-01", mid = "2026-11-09", ["end"] = "2027-01-22" },
    { name = "2027春", start = "2027-02-22", mid = "2027-04-19", ["end"] = "2027-07-02" },
  },
  holidays = {
    { name = "国庆", from = "2026-10-01", to = "2026-10-07" },
    { name = "元旦", from = "2027-01-01", to = "2027-01-03" },
    { name = "清明", from = "2027-04-03", to = "2027-04-05" },
    { name = "劳动节", from = "2027-05-01", to = "2027-05-05" },
    { name = "端午", from = "2027-06-09", to = "2027-06-11" },
  },
  spring_festival = { ["2027"] = "2027-02-06" },
}

limits = { memory_mb = 64, instructions = 1000000000, quarantine_after = 5 }

-- Messages: the demo writes them to a file in the data directory
-- (outbox.jsonl) instead of a real SMS gateway. Guardians get no SMS at
-- night: quiet hours hold messages until the window opens. No one gets
-- more than five messages a day from the county.
quiet_hours = { from = "21:30", to = "07:30" }
channels = {
  default = "demo",
  demo = { type = "file", path = "outbox.jsonl", tps = 50, daily_cap = 5 },
}

-- Message templates. The policies below send these instead of their
-- built-in texts, so the county's wording is in one place and the same
-- configuration works on Aliyun or Tencent Cloud: there each name maps to
-- the template the provider's console approved (a channel's 'templates'
-- map, see the top README), and the text here is what simulate, previews
-- and the file channel show. Each policy gives the parameters listed with
-- its templates; a template may leave some out, except visit_schedule's,
-- which use all of theirs. Children's names arrive masked (张*明).
templates = {
  -- letter_reminder (teacher, count, names, month)
  letter_teacher   = "{{teacher}}老师：{{month}}尚有{{count}}名留守儿童未给父母写信或打电话：{{names}}。请督促孩子与父母联系，联系后请登记。",
  -- letter_reminder (guardian, child, parent, month)
  letter_guardian  = "{{guardian}}您好：{{child}}{{month}}还没有给在外务工的{{parent}}写信或打电话，请督促孩子和{{parent}}联系。",
  -- guardian_checkin (teacher, count, names, month)
  checkin_list     = "{{teacher}}老师：{{month}}请联系以下{{count}}位留守儿童的临时监护人：{{names}}。联系后请登记。",
  checkin_remind   = "{{teacher}}老师：{{month}}尚有{{count}}位临时监护人未联系：{{names}}。请尽快联系并登记。",
  -- visit_schedule (teacher, count, list) and (head, school, count, days, list)
  visit_remind     = "{{teacher}}老师您好：您有{{count}}次留守儿童家访即将到期，{{list}}。请按时家访，完成后及时登记。",
  visit_escalate   = "{{head}}您好：{{school}}有{{count}}次留守儿童家访逾期{{days}}天以上仍未完成：{{list}}。请督促落实。",
  -- term_survey (teacher, count, names) and (head, term, days, count, classes)
  survey_list      = "{{teacher}}老师：新学期请核对本班{{count}}名留守儿童信息（{{names}}）：是否仍留守、监护人及电话是否变化，核对后报教务处。",
  survey_remind    = "{{teacher}}老师：本班还有{{count}}名留守儿童信息未核对（{{names}}），请尽快核对并报教务处。",
  survey_escalate  = "{{head}}校长：{{term}}学期留守儿童信息核对已过{{days}}天，本校仍有{{count}}名未核对：{{classes}}。请督促班主任尽快核对。",
  -- guardian_meeting (child, school, meeting, date)
  meeting_invite   = "{{child}}的家长您好：{{school}}定于{{date}}召开{{meeting}}，请您准时参加，与老师当面交流孩子的学习和生活情况。",
  meeting_remind   = "{{child}}的家长您好：{{school}}{{meeting}}将于明天{{date}}召开，请准时参加。",
  -- broadcast --template (the parameters given with --params)
  winter_letter    = "各位家长：本学期将于{{date}}结束，寒假期间请看护好孩子，注意防溺水、防火、防煤气中毒，外出务工的家长请多与孩子通电话。",
  -- yizhan send --template (the top README's examples)
  meeting          = "{{child}}的家长您好：{{date}}在学校召开家长会，请准时参加。",
}

plugins = {
  -- The archive: children, guardians, teachers, pairings, visits, contacts.
  registry = {},

  -- Monthly: on the 1st a digest to each proxy parent or class teacher of
  -- the children with no letter or call yet; on the 20th the guardians of
  -- those still missing.
  letter_reminder = {
    at = "0 9 1 * *", guardian_at = "0 18 20 * *",
    template = "letter_teacher", guardian_template = "letter_guardian",
  },

  -- Monthly: each class teacher gets the temporary guardians to call; a
  -- second SMS mid-month lists those still not contacted.
  guardian_checkin = {
    at = "0 9 1 * *", remind_at = "0 9 15 * *",
    template = "checkin_list", remind_template = "checkin_remind",
  },

  -- Home visits at term start, mid-term and term end, assigned to the
  -- class teacher; reminded 3 days before, escalated to the head and the
  -- deputy in charge a week after they fall due.
  visit_schedule = {
    remind_days_before = 3, escalate_after_days = 7,
    remind_template = "visit_remind", escalate_template = "visit_escalate",
  },

  -- On the first day of term, every class teacher re-confirms their list
  -- (registry confirm); a reminder after a week, the head after two.
  term_survey = {
    remind_after_days = 7, escalate_after_days = 14,
    template = "survey_list", remind_template = "survey_remind",
    escalate_template = "survey_escalate",
  },

  -- The Spring Festival meeting (3 days before the festival, when parents
  -- are home) and the autumn parent-school session, with invitations a
  -- week before and a reminder the evening before.
  guardian_meeting = {
    spring_days_before = 3,
    sessions = { { date = "2026-11-14 09:00", name = "期中家长会" } },
    invite_template = "meeting_invite", remind_template = "meeting_remind",
  },

  -- Open letters to every family: 'yizhan broadcast'.
  broadcast = {},

  -- The example plugin (examples/county/plugins/care_notes).
  care_notes = { max_length = 200, summary_to = "13800000001" },
}
