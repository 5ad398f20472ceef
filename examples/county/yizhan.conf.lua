-- The demo county's configuration (see 'yizhan init' for every option).
timezone  = "Asia/Shanghai"
log_level = "info"

limits = { memory_mb = 64, instructions = 1000000000, quarantine_after = 5 }

plugins = {
  care_notes = { max_length = 200 },
}
