-- tencent: Tencent Cloud SMS (SendSms, API 3.0, TC3-HMAC-SHA256), with
-- delivery receipts pulled by PullSmsSendStatus.
--
--   templates = { letter_reminder = "{{child}}同学{{month}}月还没有给父母写信。" },
--   channels = {
--     tencent = { type = "tencent", url = "https://sms.tencentcloudapi.com/",
--                 secret_id = env("TENCENT_SECRET_ID"),
--                 secret_key = env("TENCENT_SECRET_KEY"),
--                 sdk_app_id = "1400000000", sign_name = "某县教育局",
--                 templates = { letter_reminder = { code = "1234567",
--                                                   params = { "child", "month" } } },
--                 -- optional: region = "ap-guangzhou", timeout = 15,
--                 -- batch = 100 (numbers per request, up to 200),
--                 -- receipts_every = 60, limit_delay = 3600 },
--   }
--
-- Tencent sends only approved templates: TemplateParamSet is the list of
-- parameter values in the order the channel's template map gives.
-- SessionContext is the message key (a batch's: an id shared by the
-- messages with that template and those parameters); receipts are matched
-- by the SerialNo the provider gave each number.
--
-- Errors: AuthFailure.* (a wrong key, a clock more than 5 minutes off) and
-- an unapproved signature or application pause the channel with one error
-- saying why; no message is failed for them. LimitExceeded.* waits
-- limit_delay seconds; InvalidParameterValue.IncorrectPhoneNumber is
-- permanent; an exhausted SMS package retries later and alerts an
-- administrator; a refused template is permanent and alerts; timeouts, 5xx
-- and unknown codes are transient.

-- luacheck: globals tencent

local VERSION = "2021-01-11"

-- AuthFailure.* pauses whatever follows the dot; these name the cause.
local PAUSE = {
  ["AuthFailure.SignatureFailure"] = "the request signature does not match: check secret_key",
  ["AuthFailure.SecretIdNotFound"] = "the secret id is unknown: check secret_id",
  ["AuthFailure.SignatureExpire"] =
    "the request time is refused: this computer's clock is more than 5 minutes off",
  ["AuthFailure.InvalidSecretId"] = "the secret id is not valid: check secret_id",
  ["AuthFailure.InvalidAuthorization"] = "the Authorization header was refused",
  ["AuthFailure.UnauthorizedOperation"] = "the key may not send SMS (CAM permissions)",
  ["UnauthorizedOperation.SmsSdkAppIdVerifyFail"] = "the SMS application (sdk_app_id) is refused",
  ["InvalidParameterValue.SdkAppIdNotExist"] = "the SMS application (sdk_app_id) does not exist",
  ["FailedOperation.SignatureIncorrectOrUnapproved"] = "the signature name (sign_name) is not approved",
  ["UnauthorizedOperation.RequestIpNotInWhitelist"] =
    "this computer's address is not on the application's allowed list",
  ["UnauthorizedOperation.RequestPermissionDeny"] = "the key may not send SMS (CAM permissions)",
  ["UnauthorizedOperation.IndividualUserMarketingSmsPermissionDeny"] =
    "the account may not send this kind of SMS",
  ["UnauthorizedOperation.SerivceSuspendDueToArrears"] = "the account is suspended for arrears",
}

local PERMANENT = {
  ["InvalidParameterValue.IncorrectPhoneNumber"] = true,
  ["FailedOperation.PhoneNumberInBlacklist"] = true,
  ["FailedOperation.ContainSensitiveWord"] = true,
  ["InvalidParameterValue.TemplateParameterLengthLimit"] = true,
  ["InvalidParameterValue.ContentLengthLimit"] = true,
  ["UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber"] = true,
}

-- Seconds until the next midnight in China (the daily quota starts again),
-- a minute after it.
local function until_china_midnight(host)
  return 86400 - (host.now() + 8 * 3600) % 86400 + 60
end

local TEMPLATE = {
  ["FailedOperation.TemplateIncorrectOrUnapproved"] = true,
  ["InvalidParameterValue.TemplateParameterFormatError"] = true,
  ["FailedOperation.MissingTemplateToModify"] = true,
}

tencent = {}

-- "YYYY-MM-DD" (UTC) of t: the credential scope's date.
function tencent.utc_date(host, t)
  local d = host.date(t, "utc")
  return ("%04d-%02d-%02d"):format(d.year, d.month, d.day)
end

-- host[:port] of a URL, as the Host header carries it.
function tencent.host_of(url)
  return url:match("^https?://([^/?#]+)")
end

-- The Authorization header for body at timestamp t (service: "sms").
function tencent.authorization(host, conf, t, hostname, body, service)
  service = service or "sms"
  local c = host.crypto
  local date = tencent.utc_date(host, t)
  local canonical = table.concat({
    "POST", "/", "",
    "content-type:application/json; charset=utf-8\nhost:" .. hostname .. "\n",
    "content-type;host",
    c.sha256_hex(body),
  }, "\n")
  local scope = date .. "/" .. service .. "/tc3_request"
  local to_sign = "TC3-HMAC-SHA256\n" .. t .. "\n" .. scope .. "\n" .. c.sha256_hex(canonical)
  local k = c.hmac_sha256("TC3" .. conf.secret_key, date)
  k = c.hmac_sha256(k, service)
  k = c.hmac_sha256(k, "tc3_request")
  return ("TC3-HMAC-SHA256 Credential=%s/%s, SignedHeaders=content-type;host, Signature=%s")
    :format(conf.secret_id, scope, c.hmac_sha256_hex(k, to_sign))
end

-- The signed request for an action with its JSON body (a table).
function tencent.request(host, conf, action, payload)
  local body = host.json.encode(payload)
  local hostname = tencent.host_of(conf.url)
  local t = host.now()
  return {
    method = "POST", url = conf.url, timeout = conf.timeout or 15, insecure = conf.insecure,
    headers = {
      ["Content-Type"] = "application/json; charset=utf-8",
      ["Host"] = hostname,
      ["X-TC-Action"] = action,
      ["X-TC-Version"] = VERSION,
      ["X-TC-Timestamp"] = tostring(t),
      ["X-TC-Region"] = conf.region or "ap-guangzhou",
      ["Authorization"] = tencent.authorization(host, conf, t, hostname, body),
    },
    body = body,
  }
end

-- The outcome of an error code, as a send returns it.
function tencent.outcome(host, conf, code, message)
  local why = ("tencent: %s %s"):format(tostring(code), tostring(message or ""))
  if PAUSE[code] then return nil, ("tencent: %s (%s)"):format(PAUSE[code], code), "pause" end
  if type(code) == "string" and code:find("^AuthFailure%.") then
    return nil, ("tencent: the credentials were refused (%s): check secret_id and secret_key"):format(code),
      "pause"
  end
  if PERMANENT[code] then return nil, why, "permanent" end
  if TEMPLATE[code] then
    return nil, why, { permanent = true,
      alert = ("a template was refused (%s): check the channel's templates and the "
        .. "template approved in the Tencent Cloud console"):format(code) }
  end
  -- Quotas and the balance are not the message's fault: it waits without
  -- using an attempt (defer).
  if code == "FailedOperation.InsufficientBalanceInSmsPackage" then
    return nil, why, { retry_after = 1800, defer = true,
      alert = "the Tencent Cloud SMS package is used up (" .. code .. "): top it up; messages wait" }
  end
  if code == "LimitExceeded.PhoneNumberDailyLimit" or code == "LimitExceeded.DailyLimit" then
    return nil, why, { retry_after = until_china_midnight(host), defer = true }
  end
  if type(code) == "string" and code:find("^LimitExceeded%.") then
    return nil, why, { retry_after = conf.limit_delay or 3600, defer = true }
  end
  return nil, why -- RequestLimitExceeded, InternalError, unknown: try again
end

-- The Response of an answer, or nil with the outcome values.
function tencent.response(conf, host, res, err)
  if not res then return nil, "tencent: " .. tostring(err) end
  local ok, doc = pcall(host.json.decode, res.body or "")
  local snippet = (res.body or ""):sub(1, 200)
  if not ok or type(doc) ~= "table" or type(doc.Response) ~= "table" then
    return nil, ("tencent: HTTP %d, not the answer expected: %s"):format(res.status, snippet)
  end
  local e = doc.Response.Error
  if type(e) == "table" then return tencent.outcome(host, conf, e.Code, e.Message) end
  return doc.Response
end

-- The SessionContext of a batch (see aliyun.batch_id).
function tencent.batch_id(host, msg)
  return "b:" .. host.crypto.sha256_hex(msg.template_code .. "\n" .. host.json.encode(msg.params)):sub(1, 32)
end

-- Sends msgs (one template, one set of parameters) in one request; returns
-- one result per message ({ true, serial } or { nil, why, how }), or the
-- outcome values for them all.
function tencent.send(host, conf, msgs, context)
  local numbers = {}
  for i, m in ipairs(msgs) do numbers[i] = m.to end
  local params = {}
  for i, v in ipairs(msgs[1].param_list or {}) do params[i] = v end
  local resp, why, how = tencent.response(conf, host, host.http.request(tencent.request(host, conf, "SendSms", {
    PhoneNumberSet = numbers,
    SmsSdkAppId = conf.sdk_app_id,
    TemplateId = msgs[1].template_code,
    SignName = conf.sign_name,
    TemplateParamSet = host.json.array(params),
    SessionContext = context,
  })))
  if not resp then return nil, why, how end
  local by_number = {}
  for _, s in ipairs(resp.SendStatusSet or {}) do by_number[s.PhoneNumber] = s end
  local results = {}
  for i, m in ipairs(msgs) do
    local s = by_number[m.to]
    if not s then
      results[i] = { nil, "tencent: the answer has no status for this number" }
    elseif s.Code == "Ok" then
      results[i] = { true, s.SerialNo }
    else
      results[i] = { tencent.outcome(host, conf, s.Code, s.Message) }
    end
  end
  return results
end

-- Whether a message in doubt already went: a receipt for this number
-- since it was created whose SessionContext is its key (or its batch's id).
-- true and the SerialNo, false, or nil and the outcome values when the
-- records could not be read. Only messages the network has reported on
-- are found: one accepted seconds ago may not be yet.
function tencent.already_sent(host, conf, msg)
  local ids = { [msg.key] = true }
  if msg.template_code then ids[tencent.batch_id(host, msg)] = true end
  local begin = math.max(msg.created, host.now() - 2 * 86400) - 60
  for page = 0, 9 do
    local resp, why, how = tencent.response(conf, host, host.http.request(
      tencent.request(host, conf, "PullSmsSendStatusByPhoneNumber", {
        BeginTime = begin, Offset = page * 100, Limit = 100,
        PhoneNumber = msg.to, SmsSdkAppId = conf.sdk_app_id })))
    if not resp then return nil, why, how end
    local set = resp.PullSmsSendStatusSet or {}
    for _, r in ipairs(set) do
      if ids[r.SessionContext] then return true, r.SerialNo end
    end
    if #set < 100 then break end
  end
  return false
end

local function check(name, conf)
  for _, k in ipairs { "url", "secret_id", "secret_key", "sdk_app_id", "sign_name" } do
    if type(conf[k]) ~= "string" or conf[k] == "" then
      error(("channels.%s: a tencent channel needs %s"):format(name, k), 0)
    end
  end
  if type(conf.templates) ~= "table" then
    error(("channels.%s: a tencent channel needs templates = { name = { code = \"...\", "
      .. "params = { ... } } } (Tencent sends only approved templates)"):format(name), 0)
  end
  local batch = conf.batch or 100
  if math.type(batch) ~= "integer" or batch < 1 or batch > 200 then
    error(("channels.%s.batch: expected 1 to 200 numbers per request"):format(name), 0)
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
          -- Not sent again when the provider reported it already.
          local went, serial, how = tencent.already_sent(host, conf, msg)
          if went then return true, serial end
          if went == nil then
            return nil, "tencent: cannot tell whether an earlier attempt went: " .. tostring(serial),
              how == "pause" and "pause" or nil
          end
        end
        local results, why, how = tencent.send(host, conf, { msg }, msg.key)
        if not results then return nil, why, how end
        return table.unpack(results[1], 1, 3)
      end,
      send_batch = function(msgs)
        local results, why, how = tencent.send(host, conf, msgs, tencent.batch_id(host, msgs[1]))
        if results or how ~= "permanent" then return results, why, how end
        -- The whole request refused (a foreign number among mainland ones,
        -- say): each number on its own, so one does not sink the rest.
        results = {}
        for i, m in ipairs(msgs) do
          local r, w, h = tencent.send(host, conf, { m }, m.key)
          results[i] = r and r[1] or { nil, w, h }
        end
        return results
      end,
      receipts = function()
        -- Each receipt is handed out once: pull until the queue is empty.
        for _ = 1, 20 do
          local resp, why, how = tencent.response(conf, host, host.http.request(
            tencent.request(host, conf, "PullSmsSendStatus", { Limit = 100, SmsSdkAppId = conf.sdk_app_id })))
          if not resp then return nil, why, how end
          local set = resp.PullSmsSendStatusSet or {}
          for _, r in ipairs(set) do
            host.receipt { gateway_id = r.SerialNo, delivered = r.ReportStatus == "SUCCESS",
              detail = "tencent: " .. tostring(r.Description) }
          end
          if #set < 100 then return end
        end
      end,
    }
  end
end

return {
  name = "tencent",
  version = "1.0.0",
  description = "经腾讯云短信发送模板短信，并拉取回执 (Tencent Cloud SMS)",
  setup = setup,
}
