-- Tests of the generic HTTP channel's requests and how it reads answers.
-- luacheck: globals test host http_request http_outcome

local msg = { id = 7, key = "letter:42:2026-11", to = "+8613800138000",
  text = "本月请给父母写一封信 & 打电话", parts = 1, coding = "ucs2" }

test("a JSON body with placeholders filled", function(t)
  local req = http_request(host, {
    url = "https://sms.example.cn/api/send", body = { mobile = "{{to_national}}",
      content = "{{text}}", msgid = "{{ key }}", sign = "县教育局" },
    headers = { Authorization = "Bearer x" } }, msg)
  t.eq(req.method, "POST")
  t.eq(req.url, "https://sms.example.cn/api/send")
  t.eq(req.headers["Content-Type"], "application/json; charset=utf-8")
  t.eq(req.headers.Authorization, "Bearer x")
  t.eq(host.json.decode(req.body), { mobile = "13800138000",
    content = "本月请给父母写一封信 & 打电话", msgid = "letter:42:2026-11", sign = "县教育局" })
end)

test("a form body is percent-encoded, keys sorted", function(t)
  local req = http_request(host, { url = "http://gw/send", content = "form",
    body = { to = "{{to}}", text = "{{text}}" } }, msg)
  t.eq(req.headers["Content-Type"], "application/x-www-form-urlencoded")
  t.eq(req.body, "text=%E6%9C%AC%E6%9C%88%E8%AF%B7%E7%BB%99%E7%88%B6%E6%AF%8D%E5%86%99"
    .. "%E4%B8%80%E5%B0%81%E4%BF%A1%20%26%20%E6%89%93%E7%94%B5%E8%AF%9D&to=%2B8613800138000")
end)

test("a GET carries the message in its URL, encoded", function(t)
  local req = http_request(host, { method = "get",
    url = "http://gw/send?to={{to}}&id={{key}}" }, msg)
  t.eq(req.method, "GET")
  t.eq(req.body, nil)
  t.eq(req.url, "http://gw/send?to=%2B8613800138000&id=letter%3A42%3A2026-11")
end)

test("an unknown placeholder is an error", function(t)
  t.error(function() http_request(host, { url = "http://gw/{{phone}}" }, msg) end,
    "unknown placeholder {{phone}}")
end)

test("answers: sent, transient, permanent", function(t)
  local conf = { ok_when = { status = 200, json = { code = 0 } }, id_field = "msgid",
    permanent = { code = { 1001 } } }
  local ok, id = http_outcome(host, conf, { status = 200, body = '{"code":0,"msgid":"x9"}' })
  t.eq({ ok, id }, { true, "x9" })
  local r, why, how = http_outcome(host, conf, { status = 200, body = '{"code":1001}' })
  t.eq({ r, how }, { nil, "permanent" })
  t.contains(why, "code is 1001")
  r, why, how = http_outcome(host, conf, { status = 200, body = '{"code":7}' })
  t.eq({ r, how }, { nil, nil }) -- unknown code: worth another try
  t.contains(why, "code is 7")
  r, why = http_outcome(host, conf, { status = 200, body = "<html>proxy" })
  t.eq(r, nil)
  t.contains(why, "not the JSON expected")
  r, why, how = http_outcome(host, conf, { status = 503, body = "", headers = { ["retry-after"] = "30" } })
  t.eq({ r, how.retry_after }, { nil, 30 })
  t.contains(why, "HTTP 503")
  r, why, how = http_outcome(host, conf, { status = 429, body = "", headers = {} })
  t.eq({ r, how.retry_after }, { nil, nil })
  t.contains(why, "HTTP 429")
  r, why, how = http_outcome(host, conf, { status = 400, body = "bad number" })
  t.eq({ r, how }, { nil, "permanent" })
  t.contains(why, "HTTP 400 bad number")
  r, why, how = http_outcome(host, conf, nil, "timeout")
  t.eq({ r, why, how }, { nil, "http: timeout", nil })
end)
