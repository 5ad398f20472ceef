-- aliyun: Aliyun SMS (dysmsapi SendSms, signature version 1.0, HMAC-SHA1),
-- with delivery receipts pulled by QuerySendDetails.
--
--   templates = { letter_reminder = "{{child}}同学{{month}}月还没有给父母写信。" },
--   channels = {
--     aliyun = { type = "aliyun", url = "https://dysmsapi.aliyuncs.com/",
--                access_key_id = env("ALIYUN_AK"),
--                access_key_secret = env("ALIYUN_SK"),
--                sign_name = "某县教育局",
--                templates = { letter_reminder = "SMS_123456789" },
--                -- optional: region = "cn-hangzhou", timeout = 15,
--                -- batch = 100 (numbers per request, up to 1000),
--                -- receipts_every = 60, limit_delay = 3600 },
--   }
--
-- Aliyun sends only approved templates: each message carries its template
-- code and its parameters as TemplateParam (a JSON object), and OutId is
-- the message key. Messages that share a template and its parameters go in
-- one request (PhoneNumbers is a comma list).
--
-- SendSms is not idempotent. A message in doubt (the process died, or an
-- earlier attempt got no answer) is first looked up with QuerySendDetails:
-- if the provider has it (OutId = its key), it is recorded as sent, not
-- sent again.
--
-- Errors: refused credentials (a wrong signature or key, a clock more than
-- 15 minutes off, an unapproved signature name) pause the channel with one
-- error saying why; no message is failed for them. isv.BUSINESS_LIMIT_CONTROL
-- (the provider's per-number flow control) waits limit_delay seconds;
-- isv.MOBILE_NUMBER_ILLEGAL is permanent; isv.AMOUNT_NOT_ENOUGH (the account
-- balance) retries later and alerts an administrator; a template the
-- provider does not know or with missing parameters is permanent and alerts
-- (the config is wrong); 5xx, timeouts and unknown codes are transient.

-- luacheck: globals aliyun

local VERSION = "2017-05-25"

local AUTH = {
  ["SignatureDoesNotMatch"] = "the request signature does not match: check access_key_secret",
  ["IncompleteSignature"] = "the request signature does not match: check access_key_secret",
  ["InvalidAccessKeyId.NotFound"] = "the access key id is unknown: check access_key_id",
  ["InvalidAccessKeyId.Inactive"] = "the access key is disabled in the Aliyun console",
  ["InvalidTimeStamp.Expired"] =
    "the request time is refused: this computer's clock is more than 15 minutes off",
  ["Forbidden.RAM"] = "the access key may not send SMS (RAM permissions)",
  ["isp.RAM_PERMISSION_DENY"] = "the access key may not send SMS (RAM permissions)",
  ["isv.PRODUCT_UN_SUBSCRIPT"] = "the SMS service is not activated for this account",
  ["isv.PRODUCT_UNSUBSCRIBE"] = "the SMS service is not activated for this account",
  ["isv.DENY_IP_RANGE"] = "this computer's address is not on the account's allowed list",
  ["isv.SMS_SIGNATURE_ILLEGAL"] = "the signature name (sign_name) is not approved",
  ["isv.ACCOUNT_NOT_EXISTS"] = "the SMS account does not exist",
  ["isv.ACCOUNT_ABNORMAL"] = "the SMS account is suspended",
}

local TEMPLATE = {
  ["isv.SMS_TEMPLATE_ILLEGAL"] = true,
  ["isv.TEMPLATE_MISSING_PARAMETERS"] = true,
  ["isv.INVALID_JSON_PARAM"] = true,
  ["isv.TEMPLATE_PARAMS_ILLEGAL"] = true,
}

local PERMANENT = {
  ["isv.MOBILE_NUMBER_ILLEGAL"] = true,
  ["isv.MOBILE_COUNT_OVER_LIMIT"] = true,
  ["isv.BLACK_KEY_CONTROL_LIMIT"] = true,
  ["isv.PARAM_LENGTH_LIMIT"] = true,
  ["isv.PARAM_NOT_SUPPORT_URL"] = true,
  ["isv.SMS_CONTENT_ILLEGAL"] = true,
}

-- Seconds until the next midnight in China (a provider's daily quota
-- starts again then), a minute after it.
local function until_china_midnight(host)
  return 86400 - (host.now() + 8 * 3600) % 86400 + 60
end

aliyun = {}

-- The number as Aliyun wants it: 11 digits for the mainland, otherwise
-- the country code and number without '+'.
function aliyun.number(to)
  local national = to:match("^%+86(1%d%d%d%d%d%d%d%d%d%d)$")
  return national or to:gsub("^%+", "")
end

-- "YYYY-MM-DDThh:mm:ssZ" (UTC) of t.
function aliyun.timestamp(host, t)
  local d = host.date(t, "utc")
  return ("%04d-%02d-%02dT%02d:%02d:%02dZ"):format(d.year, d.month, d.day, d.hour, d.min, d.sec)
end

-- YYYYMMDD in China time (Aliyun's SendDate) of t.
function aliyun.send_date(host, t)
  local d = host.date(t + 8 * 3600, "utc")
  return ("%04d%02d%02d"):format(d.year, d.month, d.day)
end

-- Signature version 1.0: the sorted, RFC 3986-encoded query, encoded
-- again, signed with HMAC-SHA1 under secret .. "&".
function aliyun.sign(host, method, params, secret)
  local enc = host.crypto.percent_encode
  local keys = {}
  for k in pairs(params) do
    if k ~= "Signature" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = enc(k) .. "=" .. enc(params[k]) end
  local query = table.concat(parts, "&")
  local to_sign = method .. "&" .. enc("/") .. "&" .. enc(query)
  local sig = host.crypto.base64_encode(host.crypto.hmac_sha1(secret .. "&", to_sign))
  return sig, query
end

-- The signed request for an action with its business parameters.
function aliyun.request(host, conf, action, business)
  local p = {
    AccessKeyId = conf.access_key_id,
    Action = action,
    Format = "JSON",
    RegionId = conf.region or "cn-hangzhou",
    SignatureMethod = "HMAC-SHA1",
    SignatureNonce = host.crypto.uuid(),
    SignatureVersion = "1.0",
    Timestamp = aliyun.timestamp(host, host.now()),
    Version = VERSION,
  }
  for k, v in pairs(business) do p[k] = v end
  local sig, query = aliyun.sign(host, "POST", p, conf.access_key_secret)
  return {
    method = "POST", url = conf.url, timeout = conf.timeout or 15, insecure = conf.insecure,
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
    body = query .. "&Signature=" .. host.crypto.percent_encode(sig),
  }
end

-- What an answer means: "ok" with the decoded answer, or nil with the
-- outcome values a send returns.
function aliyun.classify(host, conf, res, err)
  if not res then return nil, "aliyun: " .. tostring(err) end
  local ok, doc = pcall(host.json.decode, res.body or "")
  local snippet = (res.body or ""):sub(1, 200)
  if not ok or type(doc) ~= "table" then
    if res.status >= 500 or res.status == 429 then
      return nil, ("aliyun: HTTP %d %s"):format(res.status, snippet)
    end
    return nil, ("aliyun: HTTP %d, not the JSON expected: %s"):format(res.status, snippet)
  end
  local code = doc.Code
  if code == "OK" then return "ok", doc end
  local why = ("aliyun: %s %s"):format(tostring(code), tostring(doc.Message or ""))
  if AUTH[code] then
    return nil, ("aliyun: %s (%s)"):format(AUTH[code], code), "pause"
  end
  if PERMANENT[code] then return nil, why, "permanent" end
  if TEMPLATE[code] then
    return nil, why, { permanent = true,
      alert = ("a template was refused (%s): check the channel's templates and the "
        .. "template approved in the Aliyun console"):format(code) }
  end
  -- Quotas and the balance are not the message's fault: it waits without
  -- using an attempt (defer).
  if code == "isv.DAY_LIMIT_CONTROL" or (code == "isv.BUSINESS_LIMIT_CONTROL"
      and tostring(doc.Message):find("天级", 1, true)) then
    return nil, why, { retry_after = until_china_midnight(host), defer = true }
  end
  if code == "isv.BUSINESS_LIMIT_CONTROL" then
    return nil, why, { retry_after = conf.limit_delay or 3600, defer = true }
  end
  if code == "isv.AMOUNT_NOT_ENOUGH" or code == "isv.OUT_OF_SERVICE" then
    return nil, why, { retry_after = 1800, defer = true,
      alert = "the Aliyun SMS account balance is not enough (" .. code .. "): top it up; messages wait" }
  end
  return nil, why -- SignatureNonceUsed, throttling, unknown codes: try again
end

-- The OutId of a batch: the same for every message with this template and
-- these parameters, so a message in doubt can find it.
function aliyun.batch_id(host, msg)
  return "b:" .. host.crypto.sha256_hex(msg.template_code .. "\n" .. host.json.encode(msg.params)):sub(1, 32)
end

local function send_request(host, conf, msgs, out_id)
  local numbers = {}
  for i, m in ipairs(msgs) do numbers[i] = aliyun.number(m.to) end
  local m = msgs[1]
  return aliyun.classify(host, conf, host.http.request(aliyun.request(host, conf, "SendSms", {
    PhoneNumbers = table.concat(numbers, ","),
    SignName = conf.sign_name,
    TemplateCode = m.template_code,
    TemplateParam = host.json.encode(m.params),
    OutId = out_id,
  })))
end

-- The provider's records of one number on one day (China time).
local function details(host, conf, number, date, biz_id)
  local business = { PhoneNumber = number, SendDate = date, PageSize = "50", CurrentPage = "1" }
  if biz_id then business.BizId = biz_id end
  local ok, doc, how = aliyun.classify(host, conf, host.http.request(
    aliyun.request(host, conf, "QuerySendDetails", business)))
  if ok ~= "ok" then return nil, doc, how end
  local list = doc.SmsSendDetailDTOs and doc.SmsSendDetailDTOs.SmsSendDetailDTO or {}
  return list
end

-- Whether a record of the provider's is this message's: its key, or its
-- batch's id, as OutId.
local function is_of(host, msg, r)
  return r.OutId == msg.key or (msg.template_code and r.OutId == aliyun.batch_id(host, msg))
end

-- Whether a message in doubt already went: its key (or its batch's id) in
-- the provider's records of the last days. true, false, or nil and the
-- outcome values when the records could not be read.
function aliyun.already_sent(host, conf, msg)
  local number = aliyun.number(msg.to)
  local seen = {}
  for t = math.max(msg.created, host.now() - 2 * 86400), host.now() + 86400, 86400 do
    local date = aliyun.send_date(host, math.min(t, host.now()))
    if not seen[date] then
      seen[date] = true
      local list, why, how = details(host, conf, number, date)
      if not list then return nil, why, how end
      for _, r in ipairs(list) do
        if is_of(host, msg, r) then return true end
      end
    end
  end
  return false
end

local function check(name, conf)
  for _, k in ipairs { "url", "access_key_id", "access_key_secret", "sign_name" } do
    if type(conf[k]) ~= "string" or conf[k] == "" then
      error(("channels.%s: an aliyun channel needs %s"):format(name, k), 0)
    end
  end
  if type(conf.templates) ~= "table" then
    error(("channels.%s: an aliyun channel needs templates = { name = \"SMS_...\" } "
      .. "(Aliyun sends only approved templates)"):format(name), 0)
  end
  local batch = conf.batch or 100
  if math.type(batch) ~= "integer" or batch < 1 or batch > 1000 then
    error(("channels.%s.batch: expected 1 to 1000 numbers per request"):format(name), 0)
  end
end

local function setup(host)
  for name, conf in pairs(host.channels) do
    check(name, conf)
    host.channel {
      name = name,
      batch_max = conf.batch or 100,
      receipts_every = conf.receipts_every or 60,
      send = function(msg)
        if msg.in_doubt or msg.attempt > 1 then
          -- Not sent again unless the provider's records say it did not go.
          local went, why, how = aliyun.already_sent(host, conf, msg)
          if went then return true end
          if went == nil then
            return nil, "aliyun: cannot tell whether an earlier attempt went: " .. tostring(why),
              how == "pause" and "pause" or nil
          end
        end
        local ok, doc, how = send_request(host, conf, { msg }, msg.key)
        if ok == "ok" then return true, doc.BizId end
        return nil, doc, how
      end,
      send_batch = function(msgs)
        local ok, doc, how = send_request(host, conf, msgs, aliyun.batch_id(host, msgs[1]))
        if ok == "ok" then return true, doc.BizId end
        if how == "permanent" then
          -- One bad number refuses the whole request: each on its own.
          local results = {}
          for i, m in ipairs(msgs) do
            local ok1, doc1, how1 = send_request(host, conf, { m }, m.key)
            results[i] = ok1 == "ok" and { true, doc1.BizId } or { nil, doc1, how1 }
          end
          return results
        end
        return nil, doc, how
      end,
      receipts = function(awaiting)
        for _, m in ipairs(awaiting) do
          -- The day it was sent; a message found by a lookup (no BizId) may
          -- have gone on an earlier day, from its creation on.
          local days, seen = {}, {}
          local from = m.gateway_id and (m.sent or m.created) or math.max(m.created, (m.sent or m.created) - 2 * 86400)
          for t = from, (m.sent or m.created) + 86399, 86400 do
            local d = aliyun.send_date(host, math.min(t, m.sent or m.created))
            if not seen[d] then
              seen[d] = true
              days[#days + 1] = d
            end
          end
          for _, date in ipairs(days) do
            local list, why, how = details(host, conf, aliyun.number(m.to), date, m.gateway_id)
            if not list then return nil, why, how end
            local found = false
            for _, r in ipairs(list) do
              -- By BizId when the answer gave one; else by OutId.
              if r.PhoneNum == aliyun.number(m.to) and (m.gateway_id or is_of(host, m, r)) then
                local status = tonumber(r.SendStatus)
                if status == 3 then
                  host.receipt(m.key, true, r.ErrCode)
                elseif status == 2 then
                  host.receipt(m.key, false, "aliyun: " .. tostring(r.ErrCode))
                end
                found = true
                break
              end
            end
            if found then break end
          end
        end
      end,
    }
  end
end

return {
  name = "aliyun",
  version = "1.0.0",
  description = "经阿里云短信服务发送模板短信，并拉取回执 (Aliyun SMS)",
  setup = setup,
}
