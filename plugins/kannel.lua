-- kannel: delivers through Kannel's HTTP sendsms interface (smsbox).
--
--   channels = {
--     sms = { type = "kannel", url = "http://127.0.0.1:13013/cgi-bin/sendsms",
--             username = "yizhan", password = env("KANNEL_PASS"),
--             from = "10086",                 -- optional sender
--             dlr_url = "http://.../dlr",     -- optional: delivery reports
--             timeout = 15 },
--   }
--
-- Text goes as charset=UTF-8, with coding=2 (UCS-2) whenever it has a
-- character outside GSM 7-bit: Chinese would otherwise arrive as '?'.
-- Kannel's sendsms has no client message id; the message key rides in the
-- dlr-url (id=KEY) so a report can be matched to its message.
-- Answers: 202 (and 200) accepted; 400 and 403 permanent (a bad number, a
-- bad charset, wrong credentials: retrying cannot help); 429, 5xx, timeouts
-- and connection errors transient.
local function escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end

local function query(params)
  local keys = {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = k .. "=" .. escape(params[k]) end
  return table.concat(out, "&")
end

local function retry_after(headers)
  local v = headers and tonumber(headers["retry-after"])
  return v and v > 0 and v or nil
end

-- Maps an answer (or a failure) to the channel's outcome.
local function outcome(res, err)
  if not res then return nil, "kannel: " .. tostring(err) end
  local body = (res.body or ""):sub(1, 200)
  if res.status == 202 or res.status == 200 then return true end
  if res.status == 429 or res.status >= 500 then
    return nil, ("kannel: HTTP %d %s"):format(res.status, body),
      { retry_after = retry_after(res.headers) }
  end
  return nil, ("kannel: HTTP %d %s"):format(res.status, body), "permanent"
end

-- The sendsms request for a message (a global, so tests can look at it).
-- luacheck: globals kannel_request
function kannel_request(conf, msg)
  local p = {
    username = conf.username, password = conf.password,
    to = msg.to, text = msg.text, charset = "UTF-8",
    coding = msg.coding == "ucs2" and "2" or "0",
  }
  if conf.from then p.from = conf.from end
  if conf.dlr_url then
    local sep = conf.dlr_url:find("?", 1, true) and "&" or "?"
    p["dlr-mask"] = tostring(conf.dlr_mask or 3)
    p["dlr-url"] = conf.dlr_url .. sep .. "id=" .. escape(msg.key) .. "&type=%d"
  end
  local sep = conf.url:find("?", 1, true) and "&" or "?"
  return { method = "GET", url = conf.url .. sep .. query(p), timeout = conf.timeout or 15,
           insecure = conf.insecure }
end

local function setup(host)
  for name, conf in pairs(host.channels) do
    for _, k in ipairs { "url", "username", "password" } do
      if type(conf[k]) ~= "string" or conf[k] == "" then
        error(("channels.%s: a kannel channel needs %s"):format(name, k), 0)
      end
    end
    host.channel {
      name = name,
      send = function(msg)
        return outcome(host.http.request(kannel_request(conf, msg)))
      end,
    }
  end
end

return {
  name = "kannel",
  version = "1.0.0",
  description = "经 Kannel 短信网关发送 (Kannel sendsms)",
  setup = setup,
}
