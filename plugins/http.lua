-- http: a generic HTTP SMS gateway, described in the config (the shape of
-- RapidPro's "External API" channel).
--
--   channels = {
--     county_gw = {
--       type = "http",
--       url = "https://sms.example.cn/api/send",   -- may hold {{to}} etc.
--       method = "POST",                           -- GET, POST or PUT
--       content = "json",                          -- json or form
--       headers = { Authorization = env("GW_TOKEN") },
--       body = { mobile = "{{to}}", content = "{{text}}", msgid = "{{key}}" },
--       ok_when = { status = 200, json = { code = 0 } },
--       permanent = { code = { 1001, 1002 } },     -- answers not worth retrying
--       id_field = "msgid",                        -- the gateway's id, if any
--       timeout = 15,
--     },
--   }
--
-- Placeholders: {{to}} (+8613800138000), {{to_national}} (13800138000),
-- {{text}}, {{key}} (the idempotency key: pass it as the client message
-- id), {{id}}, {{parts}}, {{coding}}. In the URL they are percent-encoded.
--
-- Outcome: an answer meeting ok_when is sent. Otherwise 429, 5xx,
-- timeouts and connection errors are transient (Retry-After is honoured),
-- as is a 2xx whose body cannot be read (it may or may not have been
-- taken: it is sent again with the same key); other 4xx are permanent, and
-- so is an answer whose JSON field has a value listed under 'permanent'.
-- luacheck: globals http_request http_outcome

local function escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end

local function fields(msg)
  return {
    to = msg.to, to_national = (msg.to:gsub("^%+86", "")), text = msg.text,
    key = msg.key, id = tostring(msg.id), parts = tostring(msg.parts),
    coding = msg.coding,
  }
end

local function fill(template, f, enc)
  return (template:gsub("{{%s*([%w_]+)%s*}}", function(name)
    local v = f[name]
    if v == nil then error("unknown placeholder {{" .. name .. "}}", 0) end
    return enc and enc(v) or v
  end))
end

local function fill_table(t, f)
  local out = {}
  for k, v in pairs(t) do
    if type(v) == "string" then out[k] = fill(v, f)
    elseif type(v) == "table" then out[k] = fill_table(v, f)
    else out[k] = v end
  end
  return out
end

-- The request for a message.
function http_request(host, conf, msg)
  local f = fields(msg)
  local req = {
    method = (conf.method or "POST"):upper(),
    url = fill(conf.url, f, escape),
    headers = {},
    timeout = conf.timeout or 15,
    insecure = conf.insecure,
  }
  for k, v in pairs(conf.headers or {}) do req.headers[k] = fill(tostring(v), f) end
  local body = conf.body
  if type(body) == "string" then
    req.body = fill(body, f)
  elseif type(body) == "table" then
    local filled = fill_table(body, f)
    if (conf.content or "json") == "form" then
      local keys, parts = {}, {}
      for k in pairs(filled) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do parts[#parts + 1] = escape(k) .. "=" .. escape(filled[k]) end
      req.body = table.concat(parts, "&")
      req.headers["Content-Type"] = req.headers["Content-Type"] or "application/x-www-form-urlencoded"
    else
      req.body = host.json.encode(filled)
      req.headers["Content-Type"] = req.headers["Content-Type"] or "application/json; charset=utf-8"
    end
  end
  if req.method == "GET" then req.body = nil end
  return req
end

local function status_ok(want, status)
  if want == nil then return status >= 200 and status < 300 end
  if type(want) == "number" then return status == want end
  for _, s in ipairs(want) do if s == status then return true end end
  return false
end

local function listed(list, v)
  if type(list) ~= "table" then return list == v end
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

-- Maps an answer to (true, gateway_id) | (nil, reason, how).
function http_outcome(host, conf, res, err)
  if not res then return nil, "http: " .. tostring(err) end
  local snippet = (res.body or ""):sub(1, 200)
  local ok_when = conf.ok_when or {}
  if not status_ok(ok_when.status, res.status) then
    local why = ("http: HTTP %d %s"):format(res.status, snippet)
    if res.status == 429 or res.status >= 500 or res.status < 200 then
      return nil, why, { retry_after = tonumber(res.headers and res.headers["retry-after"]) }
    end
    return nil, why, "permanent"
  end
  local doc
  if ok_when.json or conf.id_field or conf.permanent then
    local ok, decoded = pcall(host.json.decode, res.body or "")
    if not ok or type(decoded) ~= "table" then
      return nil, "http: the answer is not the JSON expected: " .. snippet
    end
    doc = decoded
  end
  for field, want in pairs(ok_when.json or {}) do
    if doc[field] ~= want then
      local how = conf.permanent and listed(conf.permanent[field], doc[field]) and "permanent" or nil
      return nil, ("http: %s is %s, not %s: %s"):format(field, tostring(doc[field]),
        tostring(want), snippet), how
    end
  end
  local id = doc and conf.id_field and doc[conf.id_field]
  return true, id ~= nil and tostring(id) or nil
end

return {
  name = "http",
  version = "1.0.0",
  description = "通用 HTTP 短信网关 (a generic HTTP SMS gateway from the config)",
  setup = function(host)
    for name, conf in pairs(host.channels) do
      if type(conf.url) ~= "string" then
        error(("channels.%s: an http channel needs url = \"https://...\""):format(name), 0)
      end
      local method = (conf.method or "POST"):upper()
      if method ~= "GET" and method ~= "POST" and method ~= "PUT" then
        error(("channels.%s.method: expected GET, POST or PUT, got %s"):format(name, method), 0)
      end
      if conf.content and conf.content ~= "json" and conf.content ~= "form" then
        error(("channels.%s.content: expected json or form, got %s"):format(name,
          tostring(conf.content)), 0)
      end
      -- A template naming an unknown placeholder is a config error now,
      -- not a failure at the first message.
      local ok, err = pcall(http_request, host, conf, { to = "+8613800138000", text = "",
        key = "k", id = 0, parts = 1, coding = "gsm7" })
      if not ok then error(("channels.%s: %s"):format(name, err), 0) end
      host.channel {
        name = name,
        send = function(msg)
          return http_outcome(host, conf, host.http.request(http_request(host, conf, msg)))
        end,
      }
    end
  end,
}
