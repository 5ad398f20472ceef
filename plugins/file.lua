-- file: a delivery channel that appends one JSON line per message to a file
-- in the data directory. The default for the demo and for trying things
-- out: nothing leaves the machine.
--
--   channels = { demo = { type = "file", path = "outbox.jsonl" } }
return {
  name = "file",
  version = "1.0.0",
  description = "把短信逐行写入数据目录中的文件 (messages as JSON lines in a file)",
  setup = function(host)
    for name, conf in pairs(host.channels) do
      local path = conf.path
      if type(path) ~= "string" or path == "" then
        error(("channels.%s: a file channel needs path = \"outbox.jsonl\""):format(name), 0)
      end
      host.channel {
        name = name,
        send = function(msg)
          local line = host.json.encode {
            id = msg.id, key = msg.key, to = msg.to, text = msg.text,
            channel = msg.channel, parts = msg.parts, coding = msg.coding,
            attempt = msg.attempt, in_doubt = msg.in_doubt,
            plugin = msg.plugin, job = msg.job, meta = msg.meta,
            template = msg.template, params = msg.params,
            at = host.now(),
          }
          local ok, err = host.append(path, line .. "\n")
          if not ok then return nil, err end
          return true, "file-" .. msg.id
        end,
      }
    end
  end,
}
