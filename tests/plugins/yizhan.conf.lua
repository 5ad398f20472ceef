-- The data directory of the shipped plugins' own tests (ctest runs
-- 'yizhan -d tests/plugins test'): the 2026-2027 school calendar the tests
-- count on, one file channel, one template and no option overrides, so
-- each plugin is tested with its own defaults. The demo county (examples/county)
-- has its own configuration and runs the same plugins in scripts/demo.sh.
timezone  = "Asia/Shanghai"
log_level = "info"

-- The 2026-2027 school year: terms with their mid-term days, the National
-- Day holiday and the Spring Festival. Example dates: use the ones your
-- education bureau publishes.
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
-- night: quiet hours hold messages until the window opens.
quiet_hours = { from = "21:30", to = "07:30" }

-- One template (the tests of template messages use it).
templates = {
  meeting = "{{child}}的家长您好：{{date}}在学校召开家长会，请准时参加。",
}

channels = {
  default = "demo",
  demo = { type = "file", path = "outbox.jsonl", tps = 50, daily_cap = 5 },
}

