#!/usr/bin/env python3
"""Mock Tencent Cloud SMS (API 3.0, version 2021-01-11) for yizhan's tests.

Python 3 standard library only. Listens on 127.0.0.1 only; POST "/" with a
JSON body, signed with TC3-HMAC-SHA256. Every answer to an API request is
HTTP 200 {"Response":{...,"RequestId":"<uuid>"}}, errors as
{"Response":{"Error":{"Code":..,"Message":..},"RequestId":..}} (except the
http500 fault). Checks, in this order (the first failure answers):

  method not POST                           UnsupportedProtocol
  path not "/"                              InvalidParameter
  1. header absent or empty (Authorization, Content-Type, Host, X-TC-Action,
     X-TC-Timestamp, X-TC-Version, X-TC-Region, in that order)
                                            MissingParameter
     X-TC-Version not 2021-01-11            NoSuchVersion
     X-TC-Region not ap-guangzhou, ap-beijing or ap-nanjing (the SMS
     regions)                               UnsupportedRegion
     Content-Type not "application/json; charset=utf-8" (or plain
     "application/json"; case and spaces around ";" ignored)
                                            InvalidParameter
     X-TC-Timestamp not an integer          InvalidParameter
  2. Authorization not "TC3-HMAC-SHA256 Credential=<SecretId>/<YYYY-MM-DD>/
     <service>/tc3_request, SignedHeaders=<a;b>, Signature=<64 hex>"
                                            AuthFailure.InvalidAuthorization
     SecretId not --secret-id               AuthFailure.SecretIdNotFound
     X-TC-Timestamp more than 300 s from server time
                                            AuthFailure.SignatureExpire
     credential date not the UTC date of X-TC-Timestamp, service not "sms",
     SignedHeaders without content-type or host (or naming a header not
     sent), or Signature wrong            AuthFailure.SignatureFailure
     The signature is recomputed over CanonicalRequest = "POST\\n/\\n" +
     query + "\\n" + canonical headers (the SignedHeaders, sorted, each
     "name:trimmed value\\n", the values exactly as sent, e.g. Host
     "127.0.0.1:PORT") + "\\n" + SignedHeaders as sent + "\\n" +
     hex(SHA256(raw body bytes)); the variant with lower-cased header values
     (as Tencent's documentation describes it) is accepted too.
  3. REPLAY PROTECTION. TC3 has no nonce, so this mock treats a Signature
     value already seen in an accepted-signature request as a replay:
     AuthFailure.SignatureFailure with Message "... replayed request ...".
     Signatures are remembered for 600 s (twice the 300 s timestamp window,
     so a replay can never slip through). A client that re-sends the very
     same signed bytes (libcurl does so by itself when a reused keep-alive
     connection dies before the answer) is caught by this. NB: two
     requests with the same body, action and X-TC-Timestamp second have the
     same Signature, so a client that polls PullSmsSendStatus twice within
     one second (e.g. "pull until the queue is empty") is flagged too;
     --replay-check SendSms limits the check to SendSms, --replay-check off
     turns it off (default: all).
  4. body not a JSON object                 FailedOperation.JsonParseFail
     X-TC-Action not SendSms/PullSmsSendStatus
                                            InvalidAction
     a body field the action does not know  UnknownParameter

SendSms (fields PhoneNumberSet, SmsSdkAppId, TemplateId, SignName,
TemplateParamSet, SessionContext, ExtendCode, SenderId):
  PhoneNumberSet / SmsSdkAppId / TemplateId absent
                                            MissingParameter
  a field of the wrong JSON type (PhoneNumberSet not an array of strings,
  SmsSdkAppId/TemplateId/SignName/SessionContext not strings)
                                            InvalidParameter
  PhoneNumberSet empty                      MissingParameter.EmptyPhoneNumberSet
  PhoneNumberSet over 200                   LimitExceeded.PhoneNumberCountLimit
  SmsSdkAppId not --sdk-app-id              InvalidParameterValue.SdkAppIdNotExist
  TemplateId not a --template               FailedOperation.TemplateIncorrectOrUnapproved
  SignName absent or empty                  FailedOperation.SignatureIncorrectOrUnapproved
  TemplateParamSet not an array of exactly the template's count of strings
  (absent counts as [])                     InvalidParameterValue.TemplateParameterFormatError
  SessionContext over 512 bytes             InvalidParameterValue
  then per number: a number that is neither "+86" + 11-digit mobile nor a
  bare 11-digit mobile (1[3-9]XXXXXXXXX) gets a SendStatusSet entry with
  Code InvalidParameterValue.IncorrectPhoneNumber; the faults file decides
  the others (below). Answer:
  {"Response":{"SendStatusSet":[{"SerialNo","PhoneNumber":"+86139..","Fee":1,
   "SessionContext","Code":"Ok","Message":"send success","IsoCode":"CN"}],
   "RequestId"}}; a failed number has its Code and Message, Fee 0,
  SerialNo "". Each "Ok" number is recorded with its SerialNo,
  SessionContext and the receipt the receipts file gives it at send time.

PullSmsSendStatus (fields Limit, SmsSdkAppId, both required):
  Limit not an integer 1..100               InvalidParameterValue
  answers and REMOVES up to Limit pending receipts, oldest first:
  {"Response":{"PullSmsSendStatusSet":[{"UserReceiveTime":"YYYY-MM-DD
   HH:MM:SS" (Beijing time, send time + 1 s),"CountryCode":"86",
   "SubscriberNumber":"139..","PhoneNumber":"+86139..","SerialNo",
   "ReportStatus":"SUCCESS"|"FAIL","Description":"用户短信接收成功"|<code>,
   "SessionContext"}],"RequestId"}}. Receipts are pending from the send on.

PullSmsSendStatusByPhoneNumber (fields BeginTime, Offset, Limit,
PhoneNumber, SmsSdkAppId required; EndTime optional; times Unix seconds):
  the receipts of that number's messages sent from BeginTime (to EndTime),
  oldest first, Offset/Limit paged, in the same shape as PullSmsSendStatus;
  it does NOT remove them (the real API reads a record, not the queue).
  Limit not 1..100, Offset < 0, a time not an integer: InvalidParameterValue.

Faults file (--faults, JSON, re-read on each SendSms; missing = {}):
  {"13900000001": ["LimitExceeded.PhoneNumberDailyLimit", "ok"],
   "13900000002": "lost"}
Keys are national numbers (86/+86 prefixes accepted too); a value is a list
of outcome names (or one name). Each SendSms that passes verification and
validation draws the next outcome of every valid number of it that is
listed (once per request per number; the last outcome sticks once the list
is used up; rewriting a number's list to a different one restarts it);
unlisted numbers -> ok. Per-number outcomes (an entry in SendStatusSet):
  ok, LimitExceeded.PhoneNumberDailyLimit,
  InvalidParameterValue.IncorrectPhoneNumber,
  FailedOperation.InsufficientBalanceInSmsPackage (any other
  LimitExceeded.X / FailedOperation.X / InvalidParameterValue.X /
  UnauthorizedOperation.X likewise)
Whole-request outcomes: when a number of the request drew one, the first
such (in PhoneNumberSet order) decides the whole request:
  RequestLimitExceeded  Response.Error RequestLimitExceeded, nothing sent
  http500               HTTP 500, Response.Error InternalError, nothing sent
  hang                  no answer for --hang-s (30) s or until the client
                        hangs up, then close; nothing sent
  lost                  the request is processed as usual (its other
                        numbers keep their own outcomes; Ok ones are
                        recorded with their receipts), then the connection
                        is closed without an answer
An unknown outcome name, or a faults/receipts file that is not valid JSON,
answers Response.Error MockConfigError (write those files via tmp+rename).

Receipts file (--receipts, JSON, re-read on each SendSms; missing = {}):
  {"13900000001": "DELIVERED", "13900000002": "MOBILE_NOT_ON_SERVICE",
   "13900000003": "none"}
DELIVERED (the default; ReportStatus SUCCESS), any failure code
(ReportStatus FAIL, Description = the code), or "none" (never a receipt).

Log (--log, one JSON line per request that is not /stats or /health,
written and flushed before the answer):
  {"n":1,"t":1700000000.123,"method":"POST","path":"/","action":"SendSms",
   "params":{...the JSON body...},"headers":{"host":..,"content-type":..,
   "authorization":..,"x-tc-...":..},"phones":["13900000001"],
   "outcome":"ok","status":200,
   "results":[{"phone":"13900000001","code":"Ok","serial":"..."}]}
action is X-TC-Action; params the JSON body (its text if not JSON); phones
the PhoneNumberSet (national form when valid, else as sent); outcome "ok" |
"lost" | "hang" | "http500" | the Response.Error Code answered; status the
HTTP status, null for hang and lost. results (SendSms that got that far)
gives each number's Code; "pulled" (PullSmsSendStatus) the SerialNos
handed out.

GET /stats -> {"total":<requests logged>,"accepted":{"139...":<messages>},
  "accepted_total":N,"rejected":{"<code>":N},"outcomes":{"ok":N,...},
  "actions":{"SendSms":N,...},"receipts_pending":N,"receipts_pulled":N}
  accepted counts "Ok" numbers (lost requests included); rejected counts
  requests whose outcome is not ok/lost by outcome, plus each number whose
  SendStatusSet Code is not Ok, by that Code; outcomes counts every request.
GET /health -> 200 "ok"

Usage:
  python3 tests/gateway/mock_tencent.py --port 0 --port-file RUN/port \\
      --pid-file RUN/pid --log RUN/tencent.jsonl [--faults RUN/faults.json] \\
      [--receipts RUN/receipts.json] [--clock-skew-s 0] \\
      --secret-id AKIDtest --secret-key testKey --sdk-app-id 1400000001 \\
      --template 1234567=2 [--template 7654321=0] [--hang-s 30] \\
      [--replay-check all|SendSms|off] [--idle-timeout 60]

--clock-skew-s S makes the server's clock S seconds ahead of the machine's.
The port file (written via FILE.tmp + rename once listening) holds the port;
SIGTERM or SIGINT stops the server cleanly (exit 0) and removes the pid and
port files.
"""

import collections
import hashlib
import hmac
import json
import re
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

# mockhttp, next to this file, is the HTTP server the mocks share; importing
# it must leave no __pycache__ in the source tree.
sys.dont_write_bytecode = True
import mockhttp  # noqa: E402

BEIJING = timezone(timedelta(hours=8))
TIME_WINDOW_S = 300
SIG_KEEP_S = 2 * TIME_WINDOW_S
VERSION = "2021-01-11"
REGIONS = ("ap-guangzhou", "ap-beijing", "ap-nanjing")
REQUIRED_HEADERS = ("Authorization", "Content-Type", "Host", "X-TC-Action", "X-TC-Timestamp",
                    "X-TC-Version", "X-TC-Region")
FIELDS = {
    "SendSms": ("PhoneNumberSet", "SmsSdkAppId", "TemplateId", "SignName", "TemplateParamSet",
                "ExtendCode", "SessionContext", "SenderId"),
    "PullSmsSendStatus": ("Limit", "SmsSdkAppId"),
    "PullSmsSendStatusByPhoneNumber": ("BeginTime", "EndTime", "Offset", "Limit", "PhoneNumber",
                                       "SmsSdkAppId"),
}
WHOLE = ("RequestLimitExceeded", "http500", "hang", "lost")
PER_NUMBER_PREFIXES = ("LimitExceeded.", "FailedOperation.", "InvalidParameterValue.", "UnauthorizedOperation.")
MESSAGES = {
    "Ok": "send success",
    "LimitExceeded.PhoneNumberDailyLimit":
        "the number of sms messages sent from a single mobile number every day exceeds the upper limit",
    "InvalidParameterValue.IncorrectPhoneNumber": "incorrect number format",
    "FailedOperation.InsufficientBalanceInSmsPackage": "insufficient balance in sms package",
}
AUTH_RE = re.compile(r"TC3-HMAC-SHA256 Credential=([^/,\s]+)/([^/,\s]+)/([^/,\s]+)/tc3_request,\s*"
                     r"SignedHeaders=([^,\s]+),\s*Signature=([0-9a-fA-F]{64})")


# ---------------------------------------------------------------- signing
def sha256_hex(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def canonical_request(method, uri, query, headers, signed_headers, body):
    """headers: {lowercase name: value as sent}; signed_headers: 'content-type;host'."""
    names = sorted(signed_headers.split(";"))
    canon = "".join(f"{k}:{headers[k].strip()}\n" for k in names)
    return "\n".join([method, uri, query, canon, signed_headers, sha256_hex(body)])


def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_signature(secret_key, timestamp, service, canonical):
    """hex(HMAC-SHA256(kSigning, StringToSign)); the date is the UTC date of timestamp."""
    date = datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%d")
    sts = f"TC3-HMAC-SHA256\n{int(timestamp)}\n{date}/{service}/tc3_request\n{sha256_hex(canonical)}"
    k = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    k = _hmac(k, service)
    k = _hmac(k, "tc3_request")
    return hmac.new(k, sts.encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- helpers
MOBILE_RE = re.compile(r"(?:\+86)?(1[3-9][0-9]{9})")  # a number sent: no bare "86" prefix
KEY_RE = mockhttp.KEY_RE  # a faults/receipts key: 86 and +86 prefixes accepted
MockConfigError = mockhttp.MockConfigError
load_map = mockhttp.load_map
Decision = mockhttp.Decision


def national(number):
    """'+8613900000001' or '13900000001' -> '13900000001'; else None."""
    return mockhttp.national(number, MOBILE_RE)


def bj_str(t):
    return datetime.fromtimestamp(t, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def is_str_list(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


# ---------------------------------------------------------------- provider
class Provider(mockhttp.Provider):
    """Verification, business rules, sent messages, the receipt queue, counters."""

    def __init__(self, args):
        super().__init__(args)
        self.secret_id = args.secret_id
        self.secret_key = args.secret_key
        self.app_id = args.sdk_app_id
        self.replay_check = args.replay_check
        self.templates = {}
        for spec in args.template:
            tid, sep, count = spec.partition("=")
            if not sep or not tid or not count.isdigit():
                raise ValueError(f"--template {spec!r} is not ID=COUNT")
            self.templates[tid] = int(count)
        self.serial_base = int(time.time()) % 100000
        self.signatures = collections.OrderedDict()  # signature -> monotonic time seen
        self.pending = collections.deque()
        self.pulled = 0
        self.open_log(args.log)

    @staticmethod
    def error(code, message, status=200):
        return Decision(status, {"Response": {"Error": {"Code": code, "Message": message},
                                              "RequestId": str(uuid.uuid4())}}, code)

    @staticmethod
    def ok(response, **kw):
        response["RequestId"] = str(uuid.uuid4())
        return Decision(200, {"Response": response}, "ok", **kw)

    # ------------------------------------------------------------ verification
    def process(self, n, method, url, headers, body):
        """headers: {lowercase name: value}."""
        if method != "POST":
            return self.error("UnsupportedProtocol", f"this API takes POST only, not {method}")
        if url.path != "/":
            return self.error("InvalidParameter", f"the path must be /, not {url.path}")
        for name in REQUIRED_HEADERS:
            if not headers.get(name.lower()):
                return self.error("MissingParameter", f"The request is missing a required parameter `{name}`.")
        if headers["x-tc-version"] != VERSION:
            return self.error("NoSuchVersion", f"The API version `{headers['x-tc-version']}` does not exist "
                                               f"(this mock serves {VERSION}).")
        if headers["x-tc-region"] not in REGIONS:
            return self.error("UnsupportedRegion", f"The region `{headers['x-tc-region']}` is not supported "
                                                   f"(SMS: {', '.join(REGIONS)}).")
        ctype = re.sub(r"\s*;\s*", "; ", headers["content-type"].strip().lower())
        if ctype not in ("application/json; charset=utf-8", "application/json"):
            return self.error("InvalidParameter",
                              f"Content-Type must be application/json; charset=utf-8, not {headers['content-type']!r}")
        if not re.fullmatch(r"[0-9]{1,12}", headers["x-tc-timestamp"]):
            return self.error("InvalidParameter", "X-TC-Timestamp must be Unix time in seconds")
        ts = int(headers["x-tc-timestamp"])
        m = AUTH_RE.fullmatch(headers["authorization"].strip())
        if not m or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", m.group(2)):
            return self.error("AuthFailure.InvalidAuthorization",
                              "Authorization is invalid: expected `TC3-HMAC-SHA256 Credential=SecretId/"
                              "YYYY-MM-DD/sms/tc3_request, SignedHeaders=content-type;host, Signature=<hex>`.")
        secret_id, date, service, signed, signature = m.groups()
        if secret_id != self.secret_id:
            return self.error("AuthFailure.SecretIdNotFound",
                              "The SecretId is not found, please ensure that your SecretId is correct.")
        now = self.now()
        if abs(ts - now) > TIME_WINDOW_S:
            return self.error("AuthFailure.SignatureExpire",
                              f"Signature expired. Timestamp date: {bj_str(ts)}, server date: {bj_str(now)}.")
        fail = "The provided credentials could not be validated. Please check your signature is correct."
        if date != datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d"):
            return self.error("AuthFailure.SignatureFailure", fail + " (credential date is not the UTC date "
                                                                     "of X-TC-Timestamp)")
        if service != "sms":
            return self.error("AuthFailure.SignatureFailure", fail + f" (service `{service}` is not sms)")
        names = signed.split(";")
        if "content-type" not in names or "host" not in names:
            return self.error("AuthFailure.SignatureFailure", fail + " (SignedHeaders must include "
                                                                     "content-type and host)")
        if any(not k or k not in headers for k in names):
            return self.error("AuthFailure.SignatureFailure", fail + " (SignedHeaders names a header not sent)")
        lower = {k: v.lower() for k, v in headers.items()}
        good = False
        for hdrs in (headers, lower):
            canon = canonical_request("POST", "/", url.query, hdrs, signed, body)
            want = tc3_signature(self.secret_key, ts, service, canon)
            if hmac.compare_digest(want, signature):
                good = True
                break
        if not good:
            return self.error("AuthFailure.SignatureFailure", fail)
        check = self.replay_check == "all" or self.replay_check == headers["x-tc-action"]
        if self.seen_before(self.signatures, signature, SIG_KEEP_S, check):
            return self.error("AuthFailure.SignatureFailure",
                              fail + " (replayed request: this Signature was already used)")
        try:
            obj = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            obj = None
        if not isinstance(obj, dict):
            return self.error("FailedOperation.JsonParseFail", "the request body is not a JSON object")
        action = headers["x-tc-action"]
        if action not in FIELDS:
            return self.error("InvalidAction", f"The action requested `{action}` does not exist.")
        unknown = [k for k in obj if k not in FIELDS[action]]
        if unknown:
            return self.error("UnknownParameter", f"The parameter `{unknown[0]}` is not recognized.")
        try:
            if action == "SendSms":
                return self.send_sms(n, obj, now)
            if action == "PullSmsSendStatusByPhoneNumber":
                return self.pull_by_phone(obj)
            return self.pull(obj)
        except MockConfigError as e:
            print(f"mock_tencent: {e}", file=sys.stderr, flush=True)
            return self.error("MockConfigError", str(e))

    def check_app(self, obj):
        app = obj.get("SmsSdkAppId")
        if app is None:
            return self.error("MissingParameter", "The request is missing a required parameter `SmsSdkAppId`.")
        if not isinstance(app, str):
            return self.error("InvalidParameter", "SmsSdkAppId must be a string.")
        if app != self.app_id:
            return self.error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId not exist.")
        return None

    # ------------------------------------------------------------ SendSms
    def send_sms(self, n, obj, now):
        pset = obj.get("PhoneNumberSet")
        if pset is None:
            return self.error("MissingParameter", "The request is missing a required parameter `PhoneNumberSet`.")
        if not is_str_list(pset):
            return self.error("InvalidParameter", "PhoneNumberSet must be an array of strings.")
        if not pset:
            return self.error("MissingParameter.EmptyPhoneNumberSet", "PhoneNumberSet is empty.")
        if len(pset) > 200:
            return self.error("LimitExceeded.PhoneNumberCountLimit",
                              "the number of phone numbers in one request exceeds 200.")
        bad = self.check_app(obj)
        if bad:
            return bad
        tid = obj.get("TemplateId")
        if tid is None:
            return self.error("MissingParameter", "The request is missing a required parameter `TemplateId`.")
        if not isinstance(tid, str):
            return self.error("InvalidParameter", "TemplateId must be a string.")
        if tid not in self.templates:
            return self.error("FailedOperation.TemplateIncorrectOrUnapproved",
                              "the template is incorrect or not approved.")
        sign = obj.get("SignName")
        if sign is not None and not isinstance(sign, str):
            return self.error("InvalidParameter", "SignName must be a string.")
        if not sign or not sign.strip():
            return self.error("FailedOperation.SignatureIncorrectOrUnapproved",
                              "the signature is incorrect or not approved.")
        tps = obj.get("TemplateParamSet", [])
        if not is_str_list(tps) or len(tps) != self.templates[tid]:
            return self.error("InvalidParameterValue.TemplateParameterFormatError",
                              f"TemplateParamSet must be {self.templates[tid]} string(s) for template {tid}.")
        sc = obj.get("SessionContext", "")
        if not isinstance(sc, str):
            return self.error("InvalidParameter", "SessionContext must be a string.")
        if len(sc.encode("utf-8")) > 512:
            return self.error("InvalidParameterValue", "SessionContext is longer than 512 bytes.")
        for k in ("ExtendCode", "SenderId"):
            if k in obj and not isinstance(obj[k], str):
                return self.error("InvalidParameter", f"{k} must be a string.")

        faults = load_map(self.faults_path, "faults", True)
        receipts = load_map(self.receipts_path, "receipts", False)
        nats = [national(x) for x in pset]
        with self.lock:
            drawn = {}
            for num in nats:
                if num is not None and num not in drawn:
                    o = self.draw(faults, num)
                    drawn[num] = "ok" if o is None else o
            for o in drawn.values():
                if o != "ok" and o not in WHOLE and not o.startswith(PER_NUMBER_PREFIXES):
                    raise MockConfigError(f"unknown fault outcome {o!r}")
            whole = next((drawn[x] for x in nats if x is not None and drawn[x] in WHOLE), None)
            if whole == "RequestLimitExceeded":
                return self.error("RequestLimitExceeded",
                                  "Your current request times equals to `21` in a second, which exceeds the "
                                  "frequency limit `20` for a second. Please reduce the frequency of calls.")
            if whole == "http500":
                d = self.error("InternalError", "An internal error has occurred. Retry your request.", 500)
                d.outcome = "http500"
                return d
            if whole == "hang":
                return Decision(None, None, "hang", mode="hang")
            statuses, results, accepted, failed = [], [], [], []
            for i, (raw, num) in enumerate(zip(pset, nats)):
                if num is None:
                    code = "InvalidParameterValue.IncorrectPhoneNumber"
                else:
                    code = drawn[num]
                    code = "Ok" if code in ("ok", "lost") else code
                if code == "Ok":
                    serial = f"{self.serial_base}:{n:08d}{i:03d}{uuid.uuid4().hex[:8]}"
                    receipt = mockhttp.receipt_for(receipts, num)
                    self.messages.append({"phone": num, "serial": serial, "t": now, "session": sc,
                                          "template": tid, "params": tps, "sign": sign, "receipt": receipt})
                    if receipt is not None:
                        self.pending.append({
                            "UserReceiveTime": bj_str(now + 1), "CountryCode": "86", "SubscriberNumber": num,
                            "PhoneNumber": "+86" + num, "SerialNo": serial,
                            "ReportStatus": "SUCCESS" if receipt == "DELIVERED" else "FAIL",
                            "Description": "用户短信接收成功" if receipt == "DELIVERED" else receipt,
                            "SessionContext": sc})
                    accepted.append(num)
                    statuses.append({"SerialNo": serial, "PhoneNumber": "+86" + num, "Fee": 1,
                                     "SessionContext": sc, "Code": "Ok", "Message": MESSAGES["Ok"],
                                     "IsoCode": "CN"})
                else:
                    serial = ""
                    failed.append(code)
                    statuses.append({"SerialNo": "", "PhoneNumber": "+86" + num if num else raw, "Fee": 0,
                                     "SessionContext": sc, "Code": code, "Message": MESSAGES.get(code, code),
                                     "IsoCode": "CN" if num else "DEF"})
                results.append({"phone": num or raw, "code": code, "serial": serial})
        extra = {"results": results}
        if whole == "lost":
            return Decision(None, None, "lost", mode="lost", extra=extra, accepted=accepted, failed=failed)
        return self.ok({"SendStatusSet": statuses}, extra=extra, accepted=accepted, failed=failed)

    # ------------------------------------------------------------ PullSmsSendStatus
    def pull(self, obj):
        limit = obj.get("Limit")
        if limit is None:
            return self.error("MissingParameter", "The request is missing a required parameter `Limit`.")
        if not isinstance(limit, int) or isinstance(limit, bool):
            return self.error("InvalidParameter", "Limit must be an integer.")
        if not 1 <= limit <= 100:
            return self.error("InvalidParameterValue", "Limit must be 1..100.")
        bad = self.check_app(obj)
        if bad:
            return bad
        with self.lock:
            out = [self.pending.popleft() for _ in range(min(limit, len(self.pending)))]
            self.pulled += len(out)
        return self.ok({"PullSmsSendStatusSet": out}, extra={"pulled": [r["SerialNo"] for r in out]})

    # ------------------------------------------- PullSmsSendStatusByPhoneNumber
    def pull_by_phone(self, obj):
        for name in ("BeginTime", "Offset", "Limit", "PhoneNumber"):
            if obj.get(name) is None:
                return self.error("MissingParameter", f"The request is missing a required parameter `{name}`.")
        for name in ("BeginTime", "EndTime", "Offset", "Limit"):
            v = obj.get(name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                return self.error("InvalidParameterValue", f"{name} must be an integer.")
        if not 1 <= obj["Limit"] <= 100 or obj["Offset"] < 0:
            return self.error("InvalidParameterValue", "Limit must be 1..100 and Offset 0 or more.")
        num = national(obj["PhoneNumber"]) if isinstance(obj["PhoneNumber"], str) else None
        if num is None:
            return self.error("InvalidParameterValue.IncorrectPhoneNumber", "incorrect number format")
        bad = self.check_app(obj)
        if bad:
            return bad
        begin, end = obj["BeginTime"], obj.get("EndTime")
        with self.lock:
            found = [m for m in self.messages if m["phone"] == num and m["receipt"] is not None
                     and m["t"] >= begin and (end is None or m["t"] <= end)]
        out = [{"UserReceiveTime": bj_str(m["t"] + 1), "CountryCode": "86", "SubscriberNumber": num,
                "PhoneNumber": "+86" + num, "SerialNo": m["serial"],
                "ReportStatus": "SUCCESS" if m["receipt"] == "DELIVERED" else "FAIL",
                "Description": "用户短信接收成功" if m["receipt"] == "DELIVERED" else m["receipt"],
                "SessionContext": m["session"]}
               for m in found[obj["Offset"]:obj["Offset"] + obj["Limit"]]]
        return self.ok({"PullSmsSendStatusSet": out})

    # ------------------------------------------------------------ stats
    def more_stats(self):
        return {"receipts_pending": len(self.pending), "receipts_pulled": self.pulled}


# ---------------------------------------------------------------- HTTP
class Handler(mockhttp.ProviderHandler):
    server_version = "mock-tencent/1"
    length_over_max = "body too large"

    def handle_api(self):
        url = urlsplit(self.path)
        prov = self.server.provider
        n = prov.next_n()
        headers = {}
        for k, v in self.headers.items():
            headers.setdefault(k.lower(), v)
        body = b""
        try:
            body = self.read_body()
        except mockhttp.BadRequest as e:
            self.close_connection = True
            decision = prov.error("InvalidParameter", f"bad request: {e}")
        else:
            decision = prov.process(n, self.command, url, headers, body)
        try:
            params = json.loads(body.decode("utf-8")) if body else {}
        except (UnicodeDecodeError, ValueError):
            params = body.decode("utf-8", "replace")
        pset = params.get("PhoneNumberSet") if isinstance(params, dict) else None
        if isinstance(params, dict) and isinstance(params.get("PhoneNumber"), str):
            pset = [params["PhoneNumber"]]
        phones = [national(x) or x for x in pset if isinstance(x, str)] if isinstance(pset, list) else []
        self.answer(n, url, {"action": headers.get("x-tc-action", ""), "params": params,
                             "headers": {k: v for k, v in headers.items()
                                         if k in ("host", "content-type", "authorization")
                                         or k.startswith("x-tc-")}},
                    phones, decision)


def main(argv=None):
    ap = mockhttp.provider_parser("Mock Tencent Cloud SMS (API 3.0) for tests (127.0.0.1 only).")
    ap.add_argument("--secret-id", default="AKIDtest")
    ap.add_argument("--secret-key", default="testKey")
    ap.add_argument("--sdk-app-id", default="1400000001")
    ap.add_argument("--template", action="append", default=[], help="ID=COUNT (repeatable)")
    ap.add_argument("--hang-s", type=float, default=30, help="how long the 'hang' fault holds (default 30)")
    ap.add_argument("--replay-check", choices=("all", "SendSms", "off"), default="all",
                    help="which actions reject an already seen Signature (default all)")
    ap.add_argument("--idle-timeout", type=float, default=60, help="close idle keep-alive connections after S")
    return mockhttp.run_provider(ap, argv, Provider, Handler, "mock_tencent")


if __name__ == "__main__":
    sys.exit(main())
