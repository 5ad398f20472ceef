-- registry: the archive and contact card of every left-behind child, the
-- people around them (parents, temporary guardians, teachers, volunteers),
-- proxy-parent pairings, home visits and the contact log; the import and
-- export of the county's CSV files, the record commands for daily use and
-- the county report. The shipped policies read these tables.
local schema = require("lib.schema")
local import = require("lib.import")
local export = require("lib.export")
local records = require("lib.records")
local report = require("lib.report")

return {
  name = "registry",
  version = "1.0.0",
  description = "留守儿童档案与联系卡、结对帮扶、家访与联系记录、统计报表",
  owns = schema.tables,
  access = { send = false },
  options = {},
  migrations = schema.migrations,
  setup = function(host, options)
    import.setup(host, options)
    export.setup(host, options)
    records.setup(host, options)
    report.setup(host, options)
  end,
}
