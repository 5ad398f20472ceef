-- Tests of the Kannel channel's sendsms requests.
-- luacheck: globals test kannel_request

local conf = { url = "http://127.0.0.1:13013/cgi-bin/sendsms", username = "u", password = "p&q" }

local function params(url)
  local out = {}
  for k, v in url:gmatch("[?&]([^=&]+)=([^&]*)") do out[k] = v end
  return out
end

test("Chinese goes as UTF-8 with coding 2, the + encoded", function(t)
  local req = kannel_request(conf, { key = "k1", to = "+8613800000002",
    text = "本月请给父母写一封信", coding = "ucs2" })
  t.eq(req.method, "GET")
  local p = params(req.url)
  t.eq(p.to, "%2B8613800000002")
  t.eq(p.charset, "UTF-8")
  t.eq(p.coding, "2")
  t.eq(p.password, "p%26q")
  t.eq(p.text, "%E6%9C%AC%E6%9C%88%E8%AF%B7%E7%BB%99%E7%88%B6%E6%AF%8D%E5%86%99%E4%B8%80%E5%B0%81%E4%BF%A1")
  t.eq(p["dlr-url"], nil)
end)

test("GSM text goes with coding 0", function(t)
  local p = params(kannel_request(conf, { key = "k", to = "+8613800000001", text = "Hi", coding = "gsm7" }).url)
  t.eq(p.coding, "0")
end)

test("the key rides in the delivery-report URL", function(t)
  local c = { url = conf.url, username = "u", password = "p", dlr_url = "http://127.0.0.1:9/dlr" }
  local p = params(kannel_request(c, { key = "letter:1", to = "+8613800000001", text = "x", coding = "gsm7" }).url)
  t.eq(p["dlr-mask"], "3")
  t.eq(p["dlr-url"], "http%3A%2F%2F127.0.0.1%3A9%2Fdlr%3Fid%3Dletter%253A1%26type%3D%25d")
end)
