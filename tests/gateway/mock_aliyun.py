#!/usr/bin/env python3
"""Mock Aliyun SMS (dysmsapi 2017-05-25, RPC style) for yizhan's tests.

Python 3 standard library only. Listens on 127.0.0.1 only, path "/", GET
(query string) or POST application/x-www-form-urlencoded (query string and
form are merged, the form wins; a POST body of any other type is ignored,
as the real endpoint ignores it). Every request is verified the way Aliyun
does, in this order, and the first failure answers (errors as
{"RequestId","Code","Message","HostId":"dysmsapi.aliyuncs.com"}):

  path not "/"                              404 InvalidAction.NotFound
  1. a common parameter absent or empty     400 Missing<Name>
     (AccessKeyId Action Format RegionId SignatureMethod SignatureNonce
      SignatureVersion Timestamp Version Signature, checked in that order)
     Format != JSON, SignatureMethod != HMAC-SHA1, SignatureVersion != 1.0,
     Version != 2017-05-25                  400 Invalid<Name>
  2. AccessKeyId not --access-key-id        404 InvalidAccessKeyId.NotFound
  3. Timestamp not YYYY-MM-DDThh:mm:ssZ     400 InvalidTimeStamp.Format
     more than 900 s from server time       400 InvalidTimeStamp.Expired
  4. Signature != base64(HMAC-SHA1(secret + "&", StringToSign)), where
     StringToSign = METHOD + "&%2F&" + enc(sorted k=v pairs joined by &),
     enc = RFC 3986 percent-encoding of UTF-8 (A-Z a-z 0-9 - _ . ~ kept)
                                            400 SignatureDoesNotMatch
     (Message "Specified signature is not matched with our calculation.
      server string to sign is:<StringToSign>")
  5. SignatureNonce seen before             400 SignatureNonceUsed
     (a nonce is remembered once the signature checked out, for 1800 s:
      twice the timestamp window, so no replay can slip through)
  6. Action not SendSms/QuerySendDetails    404 InvalidAction.NotFound

SendSms (business errors are HTTP 200 {"Code","Message","RequestId"}):
  PhoneNumbers absent/empty                 400 MissingPhoneNumbers
  more than 1000 numbers                    200 isv.MOBILE_COUNT_OVER_LIMIT
  a number not [+86|86]1[3-9]XXXXXXXXX      200 isv.MOBILE_NUMBER_ILLEGAL
  SignName absent                           400 MissingSignName
  SignName empty (or blank)                 200 isv.SMS_SIGNATURE_ILLEGAL
  TemplateCode absent/empty                 400 MissingTemplateCode
  TemplateCode not a --template             200 isv.SMS_TEMPLATE_ILLEGAL
  TemplateParam not a JSON object, or a value not a string
                                            200 isv.INVALID_JSON_PARAM
  TemplateParam lacks a required name (or is absent while the template has
  some)                                     200 isv.TEMPLATE_MISSING_PARAMETERS
  then the faults file decides (below); success is
  200 {"Code":"OK","Message":"OK","BizId":"<digits>^0","RequestId":...} and
  every number of the request is recorded as a sent message (BizId,
  SendDate = server time in Beijing time UTC+8 "YYYY-MM-DD HH:MM:SS",
  Content "【SignName】TemplateCode {params JSON, sorted keys}", OutId,
  TemplateCode) with the receipt that the receipts file gives its number
  at send time.

QuerySendDetails (PhoneNumber, SendDate, PageSize, CurrentPage required,
BizId optional filter):
  a required one absent/empty               400 Missing<Name>
  PhoneNumber not a mainland mobile         200 isv.MOBILE_NUMBER_ILLEGAL
  SendDate not YYYYMMDD, or not within the last 30 days (Beijing date of
  the server time), PageSize not 1..50, CurrentPage not >= 1
                                            200 isv.INVALID_PARAMETERS
  answer 200 {"Code":"OK","Message":"OK","TotalCount":N,"RequestId":...,
   "SmsSendDetailDTOs":{"SmsSendDetailDTO":[{"PhoneNum","SendStatus",
   "ErrCode","TemplateCode","Content","SendDate","ReceiveDate","OutId"}]}}
  over the messages to that number whose Beijing send date is SendDate (and
  whose BizId is BizId, when given), in send order, paged. SendStatus 3
  (delivered, ErrCode "DELIVERED", ReceiveDate = SendDate + 1 s), 2 (failed,
  ErrCode = the receipt code), 1 (waiting: receipt "none", ErrCode "",
  ReceiveDate ""). OutId is left out when the send had none, as Aliyun does.
  NB: SendDate is the BEIJING date: a client that takes its own UTC date
  misses messages sent between 16:00 and 24:00 UTC.

Faults file (--faults, JSON, re-read on each SendSms; missing = {}):
  {"13900000001": ["isv.BUSINESS_LIMIT_CONTROL", "ok"], "13900000002": "lost"}
Keys are national numbers (86/+86 prefixes are accepted too); a value is a
list of outcome names (or one name). Each SendSms that passes verification
and validation draws the next outcome of every number of it that is listed
(once per request per number; the last outcome sticks once the list is used
up; rewriting a number's list to a different one restarts it); the outcome
of the request is the one drawn for the FIRST listed number of the request;
unlisted numbers -> ok:
  ok                          success
  isv.BUSINESS_LIMIT_CONTROL  200, Message "触发分钟级流控Permits:1"
  isv.MOBILE_NUMBER_ILLEGAL   200
  isv.AMOUNT_NOT_ENOUGH       200 (any other "isv.X" answers likewise)
  http500                     500 {"Code":"InternalError",...}
  hang                        no answer for --hang-s (30) s or until the
                              client hangs up, then close; nothing sent
  lost                        accepted and recorded (receipts too), then the
                              connection is closed without an answer
An unknown outcome name, or a faults/receipts file that is not valid JSON,
answers 500 {"Code":"MockConfigError"} (write those files via tmp+rename).

Receipts file (--receipts, JSON, re-read on each SendSms; missing = {}):
  {"13900000001": "DELIVERED", "13900000002": "MOBILE_NOT_ON_SERVICE",
   "13900000003": "none"}
DELIVERED (the default for unlisted numbers), any failure code, or "none"
(no receipt ever: stays waiting).

Log (--log, one JSON line per request on "/", accepted or rejected, written
and flushed before the answer):
  {"n":1,"t":1700000000.123,"method":"GET","path":"/","action":"SendSms",
   "params":{...all query/form parameters but Signature...},
   "phones":["13900000001"],"outcome":"ok","status":200,"bizid":"...^0"}
action is the Action parameter ("" if none); phones the request's numbers
(PhoneNumbers or PhoneNumber; national form when valid, else as sent);
outcome "ok" | "lost" | "hang" | "http500" | the error Code answered;
status the HTTP status, null for hang and lost; bizid only on accepted
sends (ok and lost).

GET /stats -> {"total":<requests logged>,"accepted":{"139...":<messages>},
  "accepted_total":N,"rejected":{"<outcome>":N},"outcomes":{"ok":N,...},
  "actions":{"SendSms":N,"QuerySendDetails":N}}
  accepted counts messages (one per number per accepted send, lost ones
  included); rejected counts requests whose outcome is not ok/lost, by
  outcome; outcomes counts every request by outcome.
GET /health -> 200 "ok"

Usage:
  python3 tests/gateway/mock_aliyun.py --port 0 --port-file RUN/port \\
      --pid-file RUN/pid --log RUN/aliyun.jsonl [--faults RUN/faults.json] \\
      [--receipts RUN/receipts.json] [--clock-skew-s 0] \\
      --access-key-id testId --access-key-secret testSecret \\
      --template SMS_1234=child,month [--template SMS_5678=] \\
      [--hang-s 30] [--idle-timeout 60]

--clock-skew-s S makes the server's clock S seconds ahead of the machine's
(for timestamps, SendDate and the 30-day window). The port file (written via
FILE.tmp + rename once listening) holds the port; SIGTERM or SIGINT stops
the server cleanly (exit 0) and removes the pid and port files.
"""

import base64
import collections
import hashlib
import hmac
import json
import re
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote, urlsplit

# mockhttp, next to this file, is the HTTP server the mocks share; importing
# it must leave no __pycache__ in the source tree.
sys.dont_write_bytecode = True
import mockhttp  # noqa: E402

HOST_ID = "dysmsapi.aliyuncs.com"
BEIJING = timezone(timedelta(hours=8))
TIME_WINDOW_S = 900
NONCE_KEEP_S = 2 * TIME_WINDOW_S
COMMON = ("AccessKeyId", "Action", "Format", "RegionId", "SignatureMethod", "SignatureNonce",
          "SignatureVersion", "Timestamp", "Version", "Signature")
FIXED = (("Format", "JSON"), ("SignatureMethod", "HMAC-SHA1"), ("SignatureVersion", "1.0"),
         ("Version", "2017-05-25"))
SPECIAL = ("ok", "lost", "hang", "http500")
ISV_MESSAGES = {
    "isv.BUSINESS_LIMIT_CONTROL": "触发分钟级流控Permits:1",
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
    "isv.MOBILE_COUNT_OVER_LIMIT": "手机号码数量超过限制",
    "isv.SMS_SIGNATURE_ILLEGAL": "该账号下找不到对应签名",
    "isv.SMS_TEMPLATE_ILLEGAL": "该账号下找不到对应模板",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模板变量缺少对应参数值",
    "isv.INVALID_JSON_PARAM": "JSON参数不合法，只接受字符串值",
    "isv.INVALID_PARAMETERS": "参数异常",
}


# ---------------------------------------------------------------- signing
def percent_encode(s):
    """RFC 3986 percent-encoding of the UTF-8 bytes (A-Z a-z 0-9 - _ . ~ kept)."""
    return quote(s, safe="-_.~", encoding="utf-8")


def string_to_sign(method, params):
    """METHOD&%2F&enc(canonical query) over all params but Signature."""
    canon = "&".join(f"{percent_encode(k)}={percent_encode(v)}"
                     for k, v in sorted(params.items(), key=lambda kv: kv[0].encode("utf-8"))
                     if k != "Signature")
    return f"{method}&{percent_encode('/')}&{percent_encode(canon)}"


def sign(secret, method, params):
    """Aliyun RPC signature 1.0: base64(HMAC-SHA1(secret + "&", StringToSign))."""
    sts = string_to_sign(method, params)
    mac = hmac.new((secret + "&").encode("utf-8"), sts.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


# ---------------------------------------------------------------- helpers
# shared with mock_tencent.py; here they accept 86 and +86 alike
MOBILE_RE = mockhttp.KEY_RE
national = mockhttp.national
MockConfigError = mockhttp.MockConfigError
load_map = mockhttp.load_map
Decision = mockhttp.Decision


def bj_time(t):
    return datetime.fromtimestamp(t, BEIJING)


def request_id():
    return str(uuid.uuid4()).upper()


# ---------------------------------------------------------------- provider
class Provider(mockhttp.Provider):
    """Verification, business rules, the sent messages and counters."""

    def __init__(self, args):
        super().__init__(args)
        self.key_id = args.access_key_id
        self.secret = args.access_key_secret
        self.templates = {}
        for spec in args.template:
            code, sep, names = spec.partition("=")
            if not sep or not code:
                raise ValueError(f"--template {spec!r} is not CODE=name,name")
            self.templates[code] = [x.strip() for x in names.split(",") if x.strip()]
        self.biz_base = int(time.time()) % 1000000
        self.nonces = collections.OrderedDict()  # nonce -> monotonic time seen
        self.open_log(args.log)

    # ------------------------------------------------------------ answers
    @staticmethod
    def error(status, code, message):
        return Decision(status, {"RequestId": request_id(), "Code": code, "Message": message,
                                 "HostId": HOST_ID}, code)

    @staticmethod
    def biz(code, message=None):
        return Decision(200, {"Code": code, "Message": message or ISV_MESSAGES.get(code, code),
                              "RequestId": request_id()}, code)

    # ------------------------------------------------------------ verification
    def process(self, n, method, path, params):
        if path != "/":
            return self.error(404, "InvalidAction.NotFound",
                              "Specified api is not found, please check your url and method.")
        for name in COMMON:
            if not params.get(name):
                return self.error(400, "Missing" + name, f"{name} is mandatory for this action.")
        for name, want in FIXED:
            if params[name] != want:
                return self.error(400, "Invalid" + name,
                                  f"Specified parameter {name} is not valid (expected {want}).")
        if params["AccessKeyId"] != self.key_id:
            return self.error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        now = self.now()
        ts = params["Timestamp"]
        try:
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", ts):
                raise ValueError(ts)
            t = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            return self.error(400, "InvalidTimeStamp.Format",
                              "Specified time stamp or date value is not well formatted.")
        if abs(t - now) > TIME_WINDOW_S:
            return self.error(400, "InvalidTimeStamp.Expired",
                              "Specified time stamp or date value is expired.")
        sts = string_to_sign(method, params)
        want = sign(self.secret, method, params)
        if not hmac.compare_digest(want.encode(), params["Signature"].encode("utf-8")):
            return self.error(400, "SignatureDoesNotMatch",
                              "Specified signature is not matched with our calculation. "
                              "server string to sign is:" + sts)
        if self.seen_before(self.nonces, params["SignatureNonce"], NONCE_KEEP_S):
            return self.error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        action = params["Action"]
        try:
            if action == "SendSms":
                return self.send_sms(n, params, now)
            if action == "QuerySendDetails":
                return self.query(params, now)
        except MockConfigError as e:
            print(f"mock_aliyun: {e}", file=sys.stderr, flush=True)
            return Decision(500, {"RequestId": request_id(), "Code": "MockConfigError",
                                  "Message": str(e), "HostId": HOST_ID}, "MockConfigError")
        return self.error(404, "InvalidAction.NotFound",
                          "Specified api is not found, please check your url and method.")

    # ------------------------------------------------------------ SendSms
    def send_sms(self, n, params, now):
        raw = params.get("PhoneNumbers")
        if not raw:
            return self.error(400, "MissingPhoneNumbers", "PhoneNumbers is mandatory for this action.")
        numbers = raw.split(",")
        if len(numbers) > 1000:
            return self.biz("isv.MOBILE_COUNT_OVER_LIMIT")
        nats = [national(x) for x in numbers]
        bad = [x for x, y in zip(numbers, nats) if y is None]
        if bad:
            return self.biz("isv.MOBILE_NUMBER_ILLEGAL", f"非法手机号: {bad[0]}")
        sign_name = params.get("SignName")
        if sign_name is None:
            return self.error(400, "MissingSignName", "SignName is mandatory for this action.")
        if not sign_name.strip():
            return self.biz("isv.SMS_SIGNATURE_ILLEGAL")
        code = params.get("TemplateCode")
        if not code:
            return self.error(400, "MissingTemplateCode", "TemplateCode is mandatory for this action.")
        if code not in self.templates:
            return self.biz("isv.SMS_TEMPLATE_ILLEGAL")
        required = self.templates[code]
        tp = params.get("TemplateParam")
        values = {}
        if tp:
            try:
                values = json.loads(tp)
            except ValueError:
                return self.biz("isv.INVALID_JSON_PARAM", "JSON参数不合法: TemplateParam is not JSON")
            if not isinstance(values, dict):
                return self.biz("isv.INVALID_JSON_PARAM", "JSON参数不合法: TemplateParam is not a JSON object")
        missing = [k for k in required if k not in values]
        if missing:
            return self.biz("isv.TEMPLATE_MISSING_PARAMETERS", f"模板变量缺少对应参数值: {missing[0]}")
        nonstr = [k for k, v in values.items() if not isinstance(v, str)]
        if nonstr:
            return self.biz("isv.INVALID_JSON_PARAM", f"JSON参数不合法，只接受字符串值: {nonstr[0]}")

        faults = load_map(self.faults_path, "faults", True)
        receipts = load_map(self.receipts_path, "receipts", False)
        with self.lock:
            outcome = None
            seen = set()
            for num in nats:
                if num in seen:
                    continue
                seen.add(num)
                o = self.draw(faults, num)
                if o is not None and outcome is None:
                    outcome = o
            outcome = outcome or "ok"
            if outcome not in SPECIAL and not outcome.startswith("isv."):
                raise MockConfigError(f"unknown fault outcome {outcome!r}")
            if outcome not in ("ok", "lost"):
                if outcome == "http500":
                    return Decision(500, {"RequestId": request_id(), "Code": "InternalError",
                                          "Message": "The request processing has failed due to some unknown error.",
                                          "HostId": HOST_ID}, "http500")
                if outcome == "hang":
                    return Decision(None, None, "hang", mode="hang")
                return self.biz(outcome)
            biz_id = f"{self.biz_base:06d}{n:09d}^0"
            send_date = bj_time(now).strftime("%Y-%m-%d %H:%M:%S")
            content = f"【{sign_name}】{code} " + json.dumps(values, ensure_ascii=False, sort_keys=True,
                                                            separators=(",", ":"))
            for num in nats:
                r = mockhttp.receipt_for(receipts, num)
                self.messages.append({"phone": num, "biz_id": biz_id, "t": now, "send_date": send_date,
                                      "day": bj_time(now).strftime("%Y%m%d"), "content": content,
                                      "out_id": params.get("OutId"), "template": code, "receipt": r})
        extra = {"bizid": biz_id}
        if outcome == "lost":
            return Decision(None, None, "lost", mode="lost", extra=extra, accepted=nats)
        return Decision(200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id()},
                        "ok", extra=extra, accepted=nats)

    # ------------------------------------------------------------ QuerySendDetails
    def query(self, params, now):
        for name in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
            if not params.get(name):
                return self.error(400, "Missing" + name, f"{name} is mandatory for this action.")
        num = national(params["PhoneNumber"])
        if num is None:
            return self.biz("isv.MOBILE_NUMBER_ILLEGAL")
        day = params["SendDate"]
        try:
            if not re.fullmatch(r"[0-9]{8}", day):
                raise ValueError(day)
            d = datetime.strptime(day, "%Y%m%d").date()
        except ValueError:
            return self.biz("isv.INVALID_PARAMETERS", "参数异常: SendDate must be YYYYMMDD")
        today = bj_time(now).date()
        if not today - timedelta(days=30) <= d <= today:
            return self.biz("isv.INVALID_PARAMETERS", "参数异常: SendDate must be within the last 30 days")
        size, page = params["PageSize"], params["CurrentPage"]
        if not re.fullmatch(r"[0-9]{1,6}", size) or not 1 <= int(size) <= 50:
            return self.biz("isv.INVALID_PARAMETERS", "参数异常: PageSize must be 1..50")
        if not re.fullmatch(r"[0-9]{1,9}", page) or int(page) < 1:
            return self.biz("isv.INVALID_PARAMETERS", "参数异常: CurrentPage must be >= 1")
        size, page = int(size), int(page)
        biz_id = params.get("BizId") or None
        with self.lock:
            found = [m for m in self.messages
                     if m["phone"] == num and m["day"] == day and (biz_id is None or m["biz_id"] == biz_id)]
        dtos = []
        for m in found[(page - 1) * size:page * size]:
            r = m["receipt"]
            dto = {"PhoneNum": m["phone"], "TemplateCode": m["template"], "Content": m["content"],
                   "SendDate": m["send_date"]}
            if r is None:
                dto.update(SendStatus=1, ErrCode="", ReceiveDate="")
            else:
                dto.update(SendStatus=3 if r == "DELIVERED" else 2, ErrCode=r,
                           ReceiveDate=bj_time(m["t"] + 1).strftime("%Y-%m-%d %H:%M:%S"))
            if m["out_id"] is not None:
                dto["OutId"] = m["out_id"]
            dtos.append(dto)
        return Decision(200, {"Code": "OK", "Message": "OK", "TotalCount": len(found), "RequestId": request_id(),
                              "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos}}, "ok")


# ---------------------------------------------------------------- HTTP
class Handler(mockhttp.ProviderHandler):
    server_version = "mock-aliyun/1"
    json_type = "application/json;charset=utf-8"

    def handle_api(self):
        url = urlsplit(self.path)
        prov = self.server.provider
        n = prov.next_n()
        params = dict(parse_qsl(url.query, keep_blank_values=True, errors="replace"))
        try:
            body = self.read_body()
        except mockhttp.BadRequest as e:
            self.close_connection = True
            decision = prov.error(400, "InvalidParameter", f"bad request: {e}")
        else:
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if self.command == "POST" and body and ctype == "application/x-www-form-urlencoded":
                params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True,
                                        errors="replace"))
            decision = prov.process(n, self.command, url.path, params)
        raw = params.get("PhoneNumbers") if params.get("Action") != "QuerySendDetails" else None
        if raw is None:
            raw = params.get("PhoneNumber", "")
        phones = [national(x) or x for x in raw.split(",")] if raw else []
        self.answer(n, url, {"action": params.get("Action", ""),
                             "params": {k: v for k, v in params.items() if k != "Signature"}},
                    phones, decision)


def main(argv=None):
    ap = mockhttp.provider_parser("Mock Aliyun SMS (dysmsapi) for tests (127.0.0.1 only).")
    ap.add_argument("--access-key-id", default="testId")
    ap.add_argument("--access-key-secret", default="testSecret")
    ap.add_argument("--template", action="append", default=[], help="CODE=name,name (repeatable)")
    ap.add_argument("--hang-s", type=float, default=30, help="how long the 'hang' fault holds (default 30)")
    ap.add_argument("--idle-timeout", type=float, default=60, help="close idle keep-alive connections after S")
    return mockhttp.run_provider(ap, argv, Provider, Handler, "mock_aliyun")


if __name__ == "__main__":
    sys.exit(main())
