-- Tests of the Tencent Cloud channel's signing, requests and answers.
-- luacheck: globals test tencent host

local BODY = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'

test("the signature matches Tencent's published vector", function(t)
  t.eq(host.crypto.sha256_hex(BODY), "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064")
  local auth = tencent.authorization(host, { secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
    secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE" }, 1551113065, "cvm.tencentcloudapi.com", BODY, "cvm")
  t.eq(auth, "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
    .. "SignedHeaders=content-type;host, "
    .. "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")
end)

test("the credential date is the UTC date of the timestamp", function(t)
  -- 2026-11-28 23:30 UTC is already the 29th in China: the scope says the 28th
  local auth = tencent.authorization(host, { secret_id = "id", secret_key = "k" }, 1795908600,
    "sms.tencentcloudapi.com", "{}")
  t.contains(auth, "Credential=id/2026-11-28/sms/tc3_request")
end)

test("a SendSms request carries the headers it signs", function(t)
  local conf = { url = "http://127.0.0.1:8080/", secret_id = "id", secret_key = "k", region = "ap-beijing" }
  local req = tencent.request(host, conf, "SendSms", { PhoneNumberSet = { "+8613800000001" } })
  t.eq(req.method, "POST")
  t.eq(req.headers.Host, "127.0.0.1:8080")
  t.eq(req.headers["X-TC-Action"], "SendSms")
  t.eq(req.headers["X-TC-Version"], "2021-01-11")
  t.eq(req.headers["X-TC-Region"], "ap-beijing")
  t.eq(req.headers["Content-Type"], "application/json; charset=utf-8")
  local ts = tonumber(req.headers["X-TC-Timestamp"])
  t.eq(req.headers.Authorization,
    tencent.authorization(host, conf, ts, "127.0.0.1:8080", req.body))
  t.eq(host.json.decode(req.body).PhoneNumberSet[1], "+8613800000001")
end)

-- { ok, why, how } of an error code.
local function outcome(conf, code, message)
  return table.pack(tencent.outcome(host, conf, code, message))
end

test("error codes are classified as the provider means them", function(t)
  local o = outcome({}, "AuthFailure.SignatureFailure", "x")
  t.eq({ o[1], o[3] }, { nil, "pause" })
  t.contains(o[2], "secret_key")
  o = outcome({}, "AuthFailure.SignatureExpire")
  t.eq(o[3], "pause")
  t.contains(o[2], "clock")
  o = outcome({}, "InvalidParameterValue.IncorrectPhoneNumber")
  t.eq(o[3], "permanent")
  o = outcome({}, "AuthFailure.TokenFailure")
  t.eq(o[3], "pause")
  o = outcome({}, "UnauthorizedOperation.RequestIpNotInWhitelist")
  t.eq(o[3], "pause")
  t.contains(o[2], "allowed list")
  -- Quotas wait without using an attempt: an hour, or until midnight in China.
  o = outcome({ limit_delay = 600 }, "LimitExceeded.PhoneNumberOneHourLimit")
  t.eq(o[3], { retry_after = 600, defer = true })
  o = outcome({}, "LimitExceeded.PhoneNumberDailyLimit")
  t.eq(o[3].defer, true)
  local left = 86400 - (host.now() + 8 * 3600) % 86400
  t.eq(o[3].retry_after, left + 60)
  o = outcome({}, "FailedOperation.InsufficientBalanceInSmsPackage")
  t.contains(o[3].alert, "package")
  t.eq(o[3].defer, true)
  o = outcome({}, "FailedOperation.ContainSensitiveWord")
  t.eq(o[3], "permanent")
  o = outcome({}, "FailedOperation.TemplateIncorrectOrUnapproved")
  t.eq(o[3].permanent, true)
  o = outcome({}, "RequestLimitExceeded")
  t.eq({ o[1], o.n }, { nil, 2 })
  t.contains(o[2], "RequestLimitExceeded")
end)

test("answers: an error, a status set, something else", function(t)
  local function res(doc) return { status = 200, body = host.json.encode(doc), headers = {} } end
  local o = table.pack(tencent.response({}, host,
    res { Response = { Error = { Code = "AuthFailure.SecretIdNotFound" } } }))
  t.eq({ o[1], o[3] }, { nil, "pause" })
  t.contains(o[2], "secret_id")
  local r = tencent.response({}, host, res { Response = { SendStatusSet = { { Code = "Ok", SerialNo = "s1" } } } })
  t.eq(r.SendStatusSet[1].SerialNo, "s1")
  o = table.pack(tencent.response({}, host, { status = 502, body = "bad gateway" }))
  t.eq(o[1], nil)
  t.contains(o[2], "HTTP 502")
end)
