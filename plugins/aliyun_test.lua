-- Tests of the Aliyun channel's signing, requests and answers.
-- luacheck: globals test aliyun host

test("the signature matches Aliyun's published vector", function(t)
  local sig, query = aliyun.sign(host, "GET", {
    AccessKeyId = "testId", Action = "SendSms", Format = "XML", OutId = "123",
    PhoneNumbers = "15300000001", RegionId = "cn-hangzhou", SignName = "阿里云短信测试专用",
    SignatureMethod = "HMAC-SHA1", SignatureNonce = "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    SignatureVersion = "1.0", TemplateCode = "SMS_71390007",
    TemplateParam = '{"customer":"test"}', Timestamp = "2017-07-12T02:42:19Z",
    Version = "2017-05-25",
  }, "testSecret")
  t.eq(sig, "zJDF+Lrzhj/ThnlvIToysFRq6t4=")
  t.contains(query, "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123")
  t.contains(query, "SignName=%E9%98%BF%E9%87%8C%E4%BA%91")
  t.contains(query, "TemplateParam=%7B%22customer%22%3A%22test%22%7D")
end)

test("a wrong secret gives another signature", function(t)
  local p = { Action = "SendSms", Timestamp = "2017-07-12T02:42:19Z" }
  t.ok(aliyun.sign(host, "GET", p, "a") ~= aliyun.sign(host, "GET", p, "b"))
  t.ok(aliyun.sign(host, "GET", p, "a") ~= aliyun.sign(host, "POST", p, "a"))
end)

test("numbers: 11 digits for the mainland, the rest without +", function(t)
  t.eq(aliyun.number("+8613800000001"), "13800000001")
  t.eq(aliyun.number("+85291234567"), "85291234567")
end)

test("times: UTC timestamps and China-time send dates", function(t)
  t.eq(aliyun.timestamp(host, 1499827339), "2017-07-12T02:42:19Z")
  -- 2026-10-31 17:00 UTC is 2026-11-01 01:00 in China
  t.eq(aliyun.send_date(host, 1793466000), "20261101")
end)

test("a SendSms request is a signed form POST with the key as OutId", function(t)
  local conf = { url = "https://dysmsapi.aliyuncs.com/", access_key_id = "ak", access_key_secret = "sk" }
  local req = aliyun.request(host, conf, "SendSms", { PhoneNumbers = "13800000001", OutId = "letter:1" })
  t.eq(req.method, "POST")
  t.eq(req.headers["Content-Type"], "application/x-www-form-urlencoded")
  local p = {}
  for k, v in req.body:gmatch("([^=&]+)=([^&]*)") do p[k] = v end
  t.eq(p.OutId, "letter%3A1")
  t.eq(p.Format, "JSON")
  t.eq(p.SignatureMethod, "HMAC-SHA1")
  t.ok(p.Timestamp:match("^%d%d%d%d%-%d%d%-%d%dT%d%d%%3A%d%d%%3A%d%dZ$"), "timestamp " .. p.Timestamp)
  t.ok(#p.SignatureNonce == 36, "a UUID nonce")
  t.ok(p.Signature ~= nil, "signed")
  -- two requests never share a nonce
  local again = aliyun.request(host, conf, "SendSms", { PhoneNumbers = "13800000001" })
  t.ok(not again.body:find(p.SignatureNonce, 1, true), "fresh nonce")
end)

local function answer(status, doc)
  return { status = status, body = host.json.encode(doc), headers = {} }
end

-- { ok, why, how } of an answer.
local function classify(conf, res, err)
  return table.pack(aliyun.classify(host, conf, res, err))
end

test("answers are classified as the provider means them", function(t)
  local o = classify({}, answer(200, { Code = "OK", BizId = "9^1" }))
  t.eq({ o[1], o[2].BizId }, { "ok", "9^1" })
  o = classify({}, answer(400, { Code = "SignatureDoesNotMatch", Message = "x" }))
  t.eq({ o[1], o[3] }, { nil, "pause" })
  t.contains(o[2], "access_key_secret")
  o = classify({}, answer(400, { Code = "InvalidTimeStamp.Expired" }))
  t.eq(o[3], "pause")
  t.contains(o[2], "clock")
  o = classify({}, answer(404, { Code = "InvalidAccessKeyId.NotFound" }))
  t.eq(o[3], "pause")
  t.contains(o[2], "access_key_id")
  o = classify({}, answer(200, { Code = "isv.MOBILE_NUMBER_ILLEGAL" }))
  t.eq({ o[1], o[3] }, { nil, "permanent" })
  -- Quotas and the balance wait without using an attempt.
  o = classify({ limit_delay = 7200 }, answer(200, { Code = "isv.BUSINESS_LIMIT_CONTROL",
    Message = "触发小时级流控Permits:5" }))
  t.eq(o[3], { retry_after = 7200, defer = true })
  t.contains(o[2], "isv.BUSINESS_LIMIT_CONTROL")
  o = classify({ limit_delay = 7200 }, answer(200, { Code = "isv.BUSINESS_LIMIT_CONTROL",
    Message = "触发天级流控Permits:10" }))
  t.eq(o[3].retry_after, 86400 - (host.now() + 8 * 3600) % 86400 + 60)
  t.eq(o[3].defer, true)
  o = classify({}, answer(200, { Code = "isv.AMOUNT_NOT_ENOUGH" }))
  t.eq(o[3].retry_after, 1800)
  t.eq(o[3].defer, true)
  t.contains(o[3].alert, "balance")
  o = classify({}, answer(200, { Code = "isp.RAM_PERMISSION_DENY" }))
  t.eq(o[3], "pause")
  t.contains(o[2], "RAM")
  o = classify({}, answer(200, { Code = "isv.SMS_CONTENT_ILLEGAL" }))
  t.eq(o[3], "permanent")
  o = classify({}, answer(200, { Code = "isv.TEMPLATE_MISSING_PARAMETERS" }))
  t.eq(o[3].permanent, true)
  t.contains(o[3].alert, "template")
  o = classify({}, answer(200, { Code = "isv.SOMETHING_NEW" }))
  t.eq({ o[1], o[3], o.n }, { nil, nil, 2 })
  o = classify({}, { status = 502, body = "<html>bad gateway" })
  t.eq({ o[1], o.n }, { nil, 2 })
  t.contains(o[2], "HTTP 502")
  o = classify({}, nil, "timeout")
  t.eq({ o[1], o[2] }, { nil, "aliyun: timeout" })
end)

test("a batch id depends on the template and its parameters only", function(t)
  local a = { template_code = "SMS_1", params = { child = "张*明", month = "10" } }
  local b = { template_code = "SMS_1", params = { month = "10", child = "张*明" } }
  local c = { template_code = "SMS_1", params = { child = "李*华", month = "10" } }
  t.eq(aliyun.batch_id(host, a), aliyun.batch_id(host, b))
  t.ok(aliyun.batch_id(host, a) ~= aliyun.batch_id(host, c))
  t.ok(#aliyun.batch_id(host, a) <= 64)
end)
