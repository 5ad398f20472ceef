#!/usr/bin/env python3
"""Self-test of the mock SMS providers (mock_aliyun.py, mock_tencent.py).

Run: python3 tests/gateway/test_mocks.py [-v] [TestClass.test_name]

Each mock runs as a subprocess on 127.0.0.1, port 0. The requests are
signed by the small clients below, written from the algorithms in
shared/notes/sms-providers.md (not from the mocks' code); the signing
functions of the mocks themselves are checked against the notes' vectors.
Python 3 standard library only.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import mock_aliyun  # noqa: E402
import mock_tencent  # noqa: E402

BEIJING = timezone(timedelta(hours=8))

ALI_VECTOR = {
    "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
    "PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0", "TemplateCode": "SMS_71390007", "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z", "Version": "2017-05-25",
}
ALI_VECTOR_SIG = "zJDF+Lrzhj/ThnlvIToysFRq6t4="
TC_VECTOR_BODY = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
TC_VECTOR_HEADERS = {"content-type": "application/json; charset=utf-8", "host": "cvm.tencentcloudapi.com"}
TC_VECTOR_BODY_HASH = "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
TC_VECTOR_CR_HASH = "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
TC_VECTOR_SIG = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"


# ====================================================================== clients
def ali_enc(s):
    """RFC 3986 percent-encoding of the UTF-8 bytes, upper-case hex."""
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if ("A" <= c <= "Z") or ("a" <= c <= "z") or ("0" <= c <= "9") or c in "-_.~":
            out.append(c)
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def ali_sign(secret, method, params):
    canon = "&".join(ali_enc(k) + "=" + ali_enc(params[k]) for k in sorted(params) if k != "Signature")
    sts = method + "&" + ali_enc("/") + "&" + ali_enc(canon)
    return base64.b64encode(hmac.new((secret + "&").encode(), sts.encode(), hashlib.sha1).digest()).decode()


def tc_hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc_sign(secret_key, ts, date, service, header_lines, signed, body):
    """header_lines: the canonical headers text ('k:v\\n' each)."""
    cr = "POST\n/\n\n" + header_lines + "\n" + signed + "\n" + hashlib.sha256(body).hexdigest()
    sts = ("TC3-HMAC-SHA256\n%d\n%s/%s/tc3_request\n" % (ts, date, service)
           + hashlib.sha256(cr.encode()).hexdigest())
    k = tc_hmac(tc_hmac(tc_hmac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


class Mock:
    """One mock server subprocess in its own temporary directory."""

    def __init__(self, script, extra):
        self.dir = tempfile.mkdtemp(prefix="yz-mock-")
        self.port_file = os.path.join(self.dir, "port")
        self.pid_file = os.path.join(self.dir, "pid")
        self.log = os.path.join(self.dir, "requests.jsonl")
        self.faults = os.path.join(self.dir, "faults.json")
        self.receipts = os.path.join(self.dir, "receipts.json")
        self.stderr = open(os.path.join(self.dir, "stderr"), "w")
        cmd = [sys.executable, os.path.join(HERE, script), "--port", "0", "--port-file", self.port_file,
               "--pid-file", self.pid_file, "--log", self.log, "--faults", self.faults,
               "--receipts", self.receipts, "--hang-s", "1"] + extra
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr)
        deadline = time.monotonic() + 15
        self.port = None
        while time.monotonic() < deadline:
            try:
                with open(self.port_file) as f:
                    self.port = int(f.read())
                break
            except (OSError, ValueError):
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
        if not self.port:
            self.stop()
            raise RuntimeError(f"{script} did not start")

    def write(self, path, obj):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(obj, f)
        os.replace(tmp, path)

    def set_faults(self, obj):
        self.write(self.faults, obj)

    def set_receipts(self, obj):
        self.write(self.receipts, obj)

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def stats(self):
        status, body = self.get("/stats")
        assert status == 200
        return json.loads(body)

    def log_lines(self):
        with open(self.log, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def stop(self):
        rc = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            rc = self.proc.returncode
        self.stderr.close()
        return rc

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def listening_on_loopback_only(port):
    """True if /proc/net/tcp lists the port LISTENing on 127.0.0.1 only."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    addr, p = parts[1].rsplit(":", 1)
                    if int(p, 16) == port and parts[3] == "0A":
                        found.append(addr)
        except OSError:
            pass
    return found == ["0100007F"]


class AliClient:
    def __init__(self, port, key_id="testId", secret="testSecret"):
        self.port = port
        self.key_id = key_id
        self.secret = secret
        self.conn = None

    def common(self, action, offset_s=0):
        ts = datetime.fromtimestamp(time.time() + offset_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"AccessKeyId": self.key_id, "Action": action, "Format": "JSON", "RegionId": "cn-hangzhou",
                "SignatureMethod": "HMAC-SHA1", "SignatureNonce": str(uuid.uuid4()),
                "SignatureVersion": "1.0", "Timestamp": ts, "Version": "2017-05-25"}

    def send_params(self, numbers, template="SMS_1234", tparams=None, sign_name="留守儿童关爱", **extra):
        p = self.common("SendSms")
        p["PhoneNumbers"] = numbers if isinstance(numbers, str) else ",".join(numbers)
        p["SignName"] = sign_name
        p["TemplateCode"] = template
        if tparams is None:
            tparams = {"child": "小明", "month": "3月"}
        if tparams is not False:
            p["TemplateParam"] = json.dumps(tparams, ensure_ascii=False)
        p.update(extra)
        return p

    def query_params(self, phone, date=None, page_size="10", page="1", biz_id=None):
        p = self.common("QuerySendDetails")
        p.update(PhoneNumber=phone, SendDate=date or datetime.now(BEIJING).strftime("%Y%m%d"),
                 PageSize=page_size, CurrentPage=page)
        if biz_id:
            p["BizId"] = biz_id
        return p

    def request(self, params, method="GET", sign=True, secret=None, sign_method=None, timeout=10):
        """Returns (status, parsed JSON body); raises on a closed connection."""
        params = dict(params)
        if sign:
            params["Signature"] = ali_sign(secret or self.secret, sign_method or method, params)
        text = "&".join(ali_enc(k) + "=" + ali_enc(v) for k, v in params.items())
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        self.conn.timeout = timeout
        if self.conn.sock is not None:
            self.conn.sock.settimeout(timeout)
        try:
            if method == "GET":
                self.conn.request("GET", "/?" + text)
            else:
                self.conn.request("POST", "/", body=text.encode(),
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
            r = self.conn.getresponse()
            body = r.read()
        except Exception:
            self.conn.close()
            self.conn = None
            raise
        return r.status, json.loads(body)

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


class TcClient:
    last_ts = {}  # (action, body) -> last X-TC-Timestamp used, shared by all clients

    def __init__(self, port, secret_id="AKIDtest", secret_key="testKey", app_id="1400000001"):
        self.port = port
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.app_id = app_id
        self.conn = None

    def send_body(self, numbers, template="1234567", params=("小明", "3月"), **extra):
        b = {"PhoneNumberSet": list(numbers), "SmsSdkAppId": self.app_id, "TemplateId": template,
             "SignName": "留守儿童关爱", "TemplateParamSet": list(params)}
        b.update(extra)
        return b

    def build(self, action, body, ts=None, date=None, service="sms", secret_id=None, secret_key=None,
              signed="content-type;host", ctype="application/json; charset=utf-8", host=None,
              extra_headers=None, drop=(), auth=None, sign_host=None, sign_body=None):
        """Returns (headers list, raw body bytes)."""
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        if ts is None:
            # identical bytes in the same second would be a replay: move on a second
            ts = int(time.time())
            key = (action, raw)
            if self.last_ts.get(key, 0) >= ts:
                ts = self.last_ts[key] + 1
            self.last_ts[key] = ts
        date = date or datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d")
        host = host or f"127.0.0.1:{self.port}"
        headers = {"content-type": ctype, "host": host, "x-tc-action": action, "x-tc-timestamp": str(ts),
                   "x-tc-version": "2021-01-11", "x-tc-region": "ap-guangzhou"}
        headers.update(extra_headers or {})
        sig_headers = dict(headers)
        if sign_host:
            sig_headers["host"] = sign_host
        lines = "".join(f"{k}:{sig_headers.get(k, '').strip()}\n" for k in signed.split(";"))
        sig = tc_sign(secret_key or self.secret_key, ts, date, service, lines, signed,
                      raw if sign_body is None else sign_body)
        headers["authorization"] = auth or (f"TC3-HMAC-SHA256 Credential={secret_id or self.secret_id}/"
                                            f"{date}/{service}/tc3_request, SignedHeaders={signed}, "
                                            f"Signature={sig}")
        names = {"content-type": "Content-Type", "host": "Host", "authorization": "Authorization",
                 "x-tc-action": "X-TC-Action", "x-tc-timestamp": "X-TC-Timestamp",
                 "x-tc-version": "X-TC-Version", "x-tc-region": "X-TC-Region"}
        out = [(names.get(k, k), v) for k, v in headers.items() if names.get(k, k) not in drop]
        return out, raw

    def send_raw(self, headers, raw, timeout=10):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        self.conn.timeout = timeout
        if self.conn.sock is not None:
            self.conn.sock.settimeout(timeout)
        try:
            self.conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                self.conn.putheader(k, v.encode("utf-8"))
            self.conn.putheader("Content-Length", str(len(raw)))
            self.conn.endheaders(raw)
            r = self.conn.getresponse()
            body = r.read()
        except Exception:
            self.conn.close()
            self.conn = None
            raise
        return r.status, json.loads(body)

    def call(self, action, body, timeout=10, **kw):
        headers, raw = self.build(action, body, **kw)
        return self.send_raw(headers, raw, timeout=timeout)

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


# ====================================================================== vectors
class TestVectors(unittest.TestCase):
    def test_aliyun_vector_mock_signer(self):
        self.assertEqual(mock_aliyun.sign("testSecret", "GET", ALI_VECTOR), ALI_VECTOR_SIG)
        with_sig = dict(ALI_VECTOR, Signature="ignored")
        self.assertEqual(mock_aliyun.sign("testSecret", "GET", with_sig), ALI_VECTOR_SIG)

    def test_aliyun_vector_test_client(self):
        self.assertEqual(ali_sign("testSecret", "GET", ALI_VECTOR), ALI_VECTOR_SIG)

    def test_aliyun_percent_encoding(self):
        enc = mock_aliyun.percent_encode
        self.assertEqual(enc("a b*c~d/+"), "a%20b%2Ac~d%2F%2B")
        self.assertEqual(enc("阿"), "%E9%98%BF")

    def test_tencent_vector_mock_signer(self):
        self.assertEqual(mock_tencent.sha256_hex(TC_VECTOR_BODY), TC_VECTOR_BODY_HASH)
        cr = mock_tencent.canonical_request("POST", "/", "", TC_VECTOR_HEADERS, "content-type;host",
                                            TC_VECTOR_BODY)
        self.assertEqual(mock_tencent.sha256_hex(cr), TC_VECTOR_CR_HASH)
        self.assertEqual(mock_tencent.tc3_signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", 1551113065, "cvm", cr),
                         TC_VECTOR_SIG)

    def test_tencent_vector_test_client(self):
        lines = "".join(f"{k}:{v}\n" for k, v in TC_VECTOR_HEADERS.items())
        self.assertEqual(tc_sign("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", 1551113065, "2019-02-25", "cvm", lines,
                                 "content-type;host", TC_VECTOR_BODY), TC_VECTOR_SIG)


# ====================================================================== aliyun
ALI_ARGS = ["--access-key-id", "testId", "--access-key-secret", "testSecret",
            "--template", "SMS_1234=child,month", "--template", "SMS_0=", "--clock-skew-s", "0"]


class TestAliyun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock("mock_aliyun.py", ALI_ARGS)

    @classmethod
    def tearDownClass(cls):
        rc = cls.mock.stop()
        try:
            assert rc == 0, f"exit status {rc}"
            assert not os.path.exists(cls.mock.port_file)
            assert not os.path.exists(cls.mock.pid_file)
        finally:
            cls.mock.cleanup()

    def setUp(self):
        self.c = AliClient(self.mock.port)

    def tearDown(self):
        self.c.close()

    def send(self, numbers, method="GET", **kw):
        return self.c.request(self.c.send_params(numbers, **kw), method=method)

    def assertErr(self, answer, status, code):
        st, body = answer
        self.assertEqual((st, body.get("Code")), (status, code), body)
        self.assertTrue(body.get("RequestId"))
        if status != 200:
            self.assertEqual(body.get("HostId"), "dysmsapi.aliyuncs.com")
        return body

    # ------------------------------------------------------------ basics
    def test_health_and_loopback(self):
        self.assertEqual(self.mock.get("/health"), (200, b"ok"))
        self.assertTrue(listening_on_loopback_only(self.mock.port))
        with open(self.mock.pid_file) as f:
            self.assertEqual(int(f.read()), self.mock.proc.pid)

    def test_send_get_and_post(self):
        for method in ("GET", "POST"):
            st, body = self.send(["13900000101"], method=method)
            self.assertEqual(st, 200, body)
            self.assertEqual(body["Code"], "OK")
            self.assertEqual(body["Message"], "OK")
            self.assertRegex(body["BizId"], r"^[0-9]+\^0$")
            self.assertTrue(body["RequestId"])
        line = self.mock.log_lines()[-1]
        self.assertEqual(line["method"], "POST")
        self.assertEqual(line["action"], "SendSms")
        self.assertEqual(line["phones"], ["13900000101"])
        self.assertEqual((line["outcome"], line["status"]), ("ok", 200))
        self.assertEqual(line["bizid"], body["BizId"])
        self.assertNotIn("Signature", line["params"])
        self.assertEqual(line["params"]["SignName"], "留守儿童关爱")
        self.assertEqual(self.mock.stats()["accepted"]["13900000101"], 2)

    def test_keep_alive(self):
        self.send(["13900000102"])
        sock = self.c.conn.sock
        for _ in range(3):
            st, _ = self.send(["13900000102"])
            self.assertEqual(st, 200)
        self.assertIs(self.c.conn.sock, sock)

    def test_prefixes_and_template_without_params(self):
        st, body = self.send(["+8613900000103", "8613900000104", "13900000105"])
        self.assertEqual(body["Code"], "OK", body)
        self.assertEqual(self.mock.log_lines()[-1]["phones"], ["13900000103", "13900000104", "13900000105"])
        st, body = self.send("13900000106", template="SMS_0", tparams=False)
        self.assertEqual(body["Code"], "OK", body)

    # ------------------------------------------------------------ verification
    def test_missing_common_parameters(self):
        for name in mock_aliyun.COMMON:
            p = self.c.send_params("13900000110")
            if name == "Signature":
                ans = self.c.request(p, sign=False)
            else:
                del p[name]
                ans = self.c.request(p)
            body = self.assertErr(ans, 400, "Missing" + name)
            self.assertIn(name, body["Message"])
        line = self.mock.log_lines()[-1]
        self.assertEqual((line["outcome"], line["status"]), ("MissingSignature", 400))

    def test_fixed_values(self):
        for name, value in (("SignatureMethod", "HMAC-SHA256"), ("SignatureVersion", "2.0"),
                            ("Version", "2016-09-27"), ("Format", "XML")):
            p = self.c.send_params("13900000111")
            p[name] = value
            self.assertErr(self.c.request(p), 400, "Invalid" + name)

    def test_unknown_access_key(self):
        c = AliClient(self.mock.port, key_id="otherId")
        try:
            self.assertErr(c.request(c.send_params("13900000112")), 404, "InvalidAccessKeyId.NotFound")
        finally:
            c.close()

    def test_timestamp(self):
        for off in (-16 * 60, 16 * 60):
            p = self.c.send_params("13900000113")
            p["Timestamp"] = datetime.fromtimestamp(time.time() + off, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.assertErr(self.c.request(p), 400, "InvalidTimeStamp.Expired")
        for off in (-14 * 60, 14 * 60):
            p = self.c.send_params("13900000113")
            p["Timestamp"] = datetime.fromtimestamp(time.time() + off, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.assertEqual(self.c.request(p)[1]["Code"], "OK")
        for bad in ("2024-01-01 00:00:00", "2024-01-01T00:00:00+08:00", "2024-13-01T00:00:00Z", "now"):
            p = self.c.send_params("13900000113")
            p["Timestamp"] = bad
            self.assertErr(self.c.request(p), 400, "InvalidTimeStamp.Format")

    def test_signature_mismatch(self):
        body = self.assertErr(self.c.request(self.c.send_params("13900000114"), secret="wrong"),
                              400, "SignatureDoesNotMatch")
        self.assertTrue(body["Message"].startswith(
            "Specified signature is not matched with our calculation. server string to sign is:GET&%2F&"),
            body["Message"])
        # signed for GET, sent by POST
        self.assertErr(self.c.request(self.c.send_params("13900000114"), method="POST", sign_method="GET"),
                       400, "SignatureDoesNotMatch")
        # a parameter changed after signing
        p = self.c.send_params("13900000114")
        p["Signature"] = ali_sign("testSecret", "GET", p)
        p["OutId"] = "added"
        self.assertErr(self.c.request(p, sign=False), 400, "SignatureDoesNotMatch")
        # '+' in the signature sent unencoded reads as a space (a classic client bug)
        p = self.c.send_params("13900000114")
        sig = ali_sign("testSecret", "GET", p)
        text = "&".join(ali_enc(k) + "=" + ali_enc(v) for k, v in p.items()) + "&Signature=" + sig
        if "+" in sig:
            conn = http.client.HTTPConnection("127.0.0.1", self.mock.port, timeout=10)
            conn.request("GET", "/?" + text)
            r = conn.getresponse()
            self.assertEqual(json.loads(r.read())["Code"], "SignatureDoesNotMatch")
            conn.close()

    def test_nonce_reuse(self):
        p = self.c.send_params("13900000115")
        bad = self.c.request(p, secret="wrong")  # a forged request does not burn the nonce
        self.assertEqual(bad[1]["Code"], "SignatureDoesNotMatch")
        self.assertEqual(self.c.request(p)[1]["Code"], "OK")
        self.assertErr(self.c.request(p), 400, "SignatureNonceUsed")
        q = self.c.query_params("13900000115")
        q["SignatureNonce"] = p["SignatureNonce"]
        self.assertErr(self.c.request(q), 400, "SignatureNonceUsed")
        self.assertGreaterEqual(self.mock.stats()["rejected"]["SignatureNonceUsed"], 2)

    def test_unknown_action_and_path(self):
        self.assertErr(self.c.request(self.c.common("SendBatchSms")), 404, "InvalidAction.NotFound")
        conn = http.client.HTTPConnection("127.0.0.1", self.mock.port, timeout=10)
        conn.request("GET", "/other")
        r = conn.getresponse()
        self.assertEqual((r.status, json.loads(r.read())["Code"]), (404, "InvalidAction.NotFound"))
        conn.close()

    # ------------------------------------------------------------ SendSms rules
    def test_send_business_errors(self):
        for numbers in ("12900000000", "1390000011", "139000001170", "13900000117,", "+85213900000117",
                        "13900000117,abc"):
            self.assertErr(self.send(numbers), 200, "isv.MOBILE_NUMBER_ILLEGAL")
        self.assertErr(self.send(["13900000117"] * 1001), 200, "isv.MOBILE_COUNT_OVER_LIMIT")
        self.assertEqual(self.send(["13900000118"] * 1000)[1]["Code"], "OK")
        self.assertErr(self.send("13900000117", sign_name=""), 200, "isv.SMS_SIGNATURE_ILLEGAL")
        p = self.c.send_params("13900000117")
        del p["SignName"]
        self.assertErr(self.c.request(p), 400, "MissingSignName")
        p = self.c.send_params("13900000117")
        del p["PhoneNumbers"]
        self.assertErr(self.c.request(p), 400, "MissingPhoneNumbers")
        p = self.c.send_params("13900000117")
        del p["TemplateCode"]
        self.assertErr(self.c.request(p), 400, "MissingTemplateCode")
        self.assertErr(self.send("13900000117", template="SMS_9999"), 200, "isv.SMS_TEMPLATE_ILLEGAL")
        self.assertErr(self.send("13900000117", tparams={"child": "小明"}), 200, "isv.TEMPLATE_MISSING_PARAMETERS")
        self.assertErr(self.send("13900000117", tparams=False), 200, "isv.TEMPLATE_MISSING_PARAMETERS")
        self.assertErr(self.send("13900000117", tparams={"child": "小明", "month": 3}), 200, "isv.INVALID_JSON_PARAM")
        self.assertErr(self.send("13900000117", tparams=["小明"]), 200, "isv.INVALID_JSON_PARAM")
        p = self.c.send_params("13900000117")
        p["TemplateParam"] = "{child:小明}"
        self.assertErr(self.c.request(p), 200, "isv.INVALID_JSON_PARAM")
        self.assertNotIn("13900000117", self.mock.stats()["accepted"])

    # ------------------------------------------------------------ faults
    def test_fault_sequence(self):
        n = "13900000120"
        self.mock.set_faults({n: ["isv.BUSINESS_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH",
                                  "isv.MOBILE_NUMBER_ILLEGAL", "ok"]})
        body = self.assertErr(self.send(n), 200, "isv.BUSINESS_LIMIT_CONTROL")
        self.assertEqual(body["Message"], "触发分钟级流控Permits:1")
        self.assertErr(self.send(n), 200, "isv.AMOUNT_NOT_ENOUGH")
        self.assertErr(self.send(n), 200, "isv.MOBILE_NUMBER_ILLEGAL")
        self.assertEqual(self.send(n)[1]["Code"], "OK")
        self.assertEqual(self.send(n)[1]["Code"], "OK")  # the last one sticks
        # a verification failure does not consume an outcome
        self.mock.set_faults({n: ["isv.AMOUNT_NOT_ENOUGH", "ok"]})
        self.assertEqual(self.c.request(self.c.send_params(n), secret="x")[1]["Code"], "SignatureDoesNotMatch")
        self.assertErr(self.send(n), 200, "isv.AMOUNT_NOT_ENOUGH")
        # the file is re-read: a rewrite takes effect on the next request
        self.mock.set_faults({})
        self.assertEqual(self.send(n)[1]["Code"], "OK")
        self.mock.set_faults({"+86" + n: "isv.BUSINESS_LIMIT_CONTROL"})
        self.assertErr(self.send(n), 200, "isv.BUSINESS_LIMIT_CONTROL")
        self.assertErr(self.send(n), 200, "isv.BUSINESS_LIMIT_CONTROL")
        os.remove(self.mock.faults)
        self.assertEqual(self.send(n)[1]["Code"], "OK")
        st = self.mock.stats()
        self.assertEqual(st["accepted"][n], 4)
        self.assertGreaterEqual(st["rejected"]["isv.BUSINESS_LIMIT_CONTROL"], 3)

    def test_fault_first_listed_number_decides(self):
        a, b, c = "13900000121", "13900000122", "13900000123"
        self.mock.set_faults({b: ["isv.AMOUNT_NOT_ENOUGH", "ok"], c: ["isv.BUSINESS_LIMIT_CONTROL", "ok"]})
        self.assertErr(self.send([a, b, c]), 200, "isv.AMOUNT_NOT_ENOUGH")
        self.assertEqual(self.send([a, c, b])[1]["Code"], "OK")  # both lists consumed by the first send
        self.mock.set_faults({})

    def test_fault_http500_and_config_error(self):
        n = "13900000124"
        self.mock.set_faults({n: ["http500", "bogus"]})
        body = self.assertErr(self.send(n), 500, "InternalError")
        self.assertTrue(body["Message"])
        self.assertErr(self.send(n), 500, "MockConfigError")
        with open(self.mock.faults, "w") as f:
            f.write("{not json")
        self.assertErr(self.send(n), 500, "MockConfigError")
        self.mock.set_faults({})
        st = self.mock.stats()
        self.assertNotIn(n, st["accepted"])
        self.assertGreaterEqual(st["rejected"]["http500"], 1)

    def test_fault_hang(self):
        n = "13900000125"
        self.mock.set_faults({n: ["hang", "ok"]})
        t0 = time.monotonic()
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.send(n)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)  # --hang-s 1
        line = [x for x in self.mock.log_lines() if x["phones"] == [n]][-1]
        self.assertEqual((line["outcome"], line["status"]), ("hang", None))
        self.assertEqual(self.send(n)[1]["Code"], "OK")
        self.assertEqual(self.mock.stats()["accepted"][n], 1)
        # a client that gives up first
        self.mock.set_faults({n: "hang"})
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.c.request(self.c.send_params(n), timeout=0.3)
        self.mock.set_faults({})

    def test_fault_lost(self):
        n = "13900000126"
        self.mock.set_faults({n: ["lost", "ok"]})
        self.mock.set_receipts({n: "DELIVERED"})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.c.request(self.c.send_params(n, OutId="out-lost"))
        line = [x for x in self.mock.log_lines() if x["phones"] == [n]][-1]
        self.assertEqual((line["outcome"], line["status"]), ("lost", None))
        st, body = self.c.request(self.c.query_params(n))
        self.assertEqual(body["Code"], "OK", body)
        self.assertEqual(body["TotalCount"], 1)
        dto = body["SmsSendDetailDTOs"]["SmsSendDetailDTO"][0]
        self.assertEqual((dto["SendStatus"], dto["ErrCode"], dto["OutId"]), (3, "DELIVERED", "out-lost"))
        self.assertEqual(self.mock.stats()["accepted"][n], 1)
        self.assertEqual(self.send(n)[1]["Code"], "OK")
        self.mock.set_faults({})

    # ------------------------------------------------------------ receipts
    def test_receipts(self):
        ok, fail, none, dflt = "13900000130", "13900000131", "13900000132", "13900000133"
        self.mock.set_receipts({ok: "DELIVERED", fail: "MOBILE_NOT_ON_SERVICE", none: "none"})
        today = datetime.now(BEIJING).strftime("%Y%m%d")
        st, body = self.send([ok, fail, none, dflt], method="POST", OutId="42")
        self.assertEqual(body["Code"], "OK", body)
        biz = body["BizId"]
        want = {ok: (3, "DELIVERED"), fail: (2, "MOBILE_NOT_ON_SERVICE"), none: (1, ""), dflt: (3, "DELIVERED")}
        for num, (status, err) in want.items():
            st, q = self.c.request(self.c.query_params(num, date=today))
            self.assertEqual((st, q["Code"], q["TotalCount"]), (200, "OK", 1), q)
            dto = q["SmsSendDetailDTOs"]["SmsSendDetailDTO"][0]
            self.assertEqual((dto["PhoneNum"], dto["SendStatus"], dto["ErrCode"]), (num, status, err))
            self.assertEqual((dto["TemplateCode"], dto["OutId"]), ("SMS_1234", "42"))
            self.assertTrue(dto["Content"].startswith("【留守儿童关爱】"), dto["Content"])
            self.assertIn("小明", dto["Content"])
            self.assertRegex(dto["SendDate"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
            self.assertTrue(dto["SendDate"].replace("-", "").startswith(today))
            if status == 1:
                self.assertEqual(dto["ReceiveDate"], "")
            else:
                self.assertRegex(dto["ReceiveDate"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
        # BizId filter, paging, no OutId
        st, body2 = self.send(ok)
        st, q = self.c.request(self.c.query_params(ok, date=today))
        self.assertEqual(q["TotalCount"], 2)
        st, q = self.c.request(self.c.query_params(ok, date=today, biz_id=biz))
        self.assertEqual(q["TotalCount"], 1)
        st, q = self.c.request(self.c.query_params(ok, date=today, biz_id=body2["BizId"]))
        self.assertEqual(q["TotalCount"], 1)
        self.assertNotIn("OutId", q["SmsSendDetailDTOs"]["SmsSendDetailDTO"][0])
        self.send(ok)
        st, q = self.c.request(self.c.query_params(ok, date=today, page_size="2", page="2"))
        self.assertEqual(q["TotalCount"], 3)
        self.assertEqual(len(q["SmsSendDetailDTOs"]["SmsSendDetailDTO"]), 1)
        st, q = self.c.request(self.c.query_params(ok, date=today, page_size="2", page="3"))
        self.assertEqual((q["TotalCount"], q["SmsSendDetailDTOs"]["SmsSendDetailDTO"]), (3, []))
        # another day, another number: nothing
        yesterday = (datetime.now(BEIJING) - timedelta(days=1)).strftime("%Y%m%d")
        st, q = self.c.request(self.c.query_params(ok, date=yesterday))
        self.assertEqual((q["Code"], q["TotalCount"]), ("OK", 0))
        st, q = self.c.request(self.c.query_params("13900000139", date=today))
        self.assertEqual((q["Code"], q["TotalCount"]), ("OK", 0))
        line = self.mock.log_lines()[-1]
        self.assertEqual((line["action"], line["phones"], line["outcome"]), ("QuerySendDetails", ["13900000139"], "ok"))
        self.mock.set_receipts({})

    def test_query_errors(self):
        n = "13900000134"
        for name in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
            p = self.c.query_params(n)
            del p[name]
            self.assertErr(self.c.request(p), 400, "Missing" + name)
        old = (datetime.now(BEIJING) - timedelta(days=40)).strftime("%Y%m%d")
        for kw in ({"date": "2024-01-01"}, {"date": "20241301"}, {"date": old}, {"page_size": "0"},
                   {"page_size": "51"}, {"page_size": "x"}, {"page": "0"}):
            self.assertErr(self.c.request(self.c.query_params(n, **kw)), 200, "isv.INVALID_PARAMETERS")
        self.assertErr(self.c.request(self.c.query_params("12345")), 200, "isv.MOBILE_NUMBER_ILLEGAL")
        self.assertErr(self.c.request(self.c.query_params(n), secret="wrong"), 400, "SignatureDoesNotMatch")
        p = self.c.query_params(n)
        p["Timestamp"] = "2017-07-12T02:42:19Z"
        self.assertErr(self.c.request(p), 400, "InvalidTimeStamp.Expired")
        self.assertEqual(self.c.request(self.c.query_params(n, page_size="50"), method="POST")[1]["Code"], "OK")

    def test_stats_format(self):
        st = self.mock.stats()
        for k in ("total", "accepted", "accepted_total", "rejected", "outcomes", "actions"):
            self.assertIn(k, st)
        self.assertEqual(st["total"], len(self.mock.log_lines()))
        self.assertEqual(st["accepted_total"], sum(st["accepted"].values()))
        self.assertEqual(st["total"], sum(st["outcomes"].values()))


class TestAliyunClockSkew(unittest.TestCase):
    def test_skew(self):
        mock = Mock("mock_aliyun.py", ALI_ARGS + ["--clock-skew-s", "3600"])
        c = AliClient(mock.port)
        try:
            self.assertEqual(c.request(c.send_params("13900000140"))[1]["Code"], "InvalidTimeStamp.Expired")
            p = c.send_params("13900000140")
            p["Timestamp"] = datetime.fromtimestamp(time.time() + 3600, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.assertEqual(c.request(p)[1]["Code"], "OK")
        finally:
            c.close()
            self.assertEqual(mock.stop(), 0)
            self.assertFalse(os.path.exists(mock.port_file) or os.path.exists(mock.pid_file))
            mock.cleanup()


# ====================================================================== tencent
TC_ARGS = ["--secret-id", "AKIDtest", "--secret-key", "testKey", "--sdk-app-id", "1400000001",
           "--template", "1234567=2", "--template", "7654321=0"]


class TestTencent(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock("mock_tencent.py", TC_ARGS)

    @classmethod
    def tearDownClass(cls):
        rc = cls.mock.stop()
        try:
            assert rc == 0, f"exit status {rc}"
            assert not os.path.exists(cls.mock.port_file)
            assert not os.path.exists(cls.mock.pid_file)
        finally:
            cls.mock.cleanup()

    def setUp(self):
        self.c = TcClient(self.mock.port)

    def tearDown(self):
        self.c.close()

    def send(self, numbers, timeout=10, **kw):
        return self.c.call("SendSms", self.c.send_body(numbers, **kw), timeout=timeout)

    def assertErr(self, answer, code, status=200):
        st, body = answer
        resp = body.get("Response", {})
        self.assertEqual((st, resp.get("Error", {}).get("Code")), (status, code), body)
        self.assertTrue(resp.get("RequestId"))
        return resp["Error"]["Message"]

    def statuses(self, answer):
        st, body = answer
        self.assertEqual(st, 200)
        self.assertNotIn("Error", body["Response"], body)
        return body["Response"]["SendStatusSet"]

    def drain(self):
        while True:
            st, body = self.c.call("PullSmsSendStatus", {"Limit": 100, "SmsSdkAppId": "1400000001"})
            if not body["Response"]["PullSmsSendStatusSet"]:
                return

    def pull(self, limit=100):
        st, body = self.c.call("PullSmsSendStatus", {"Limit": limit, "SmsSdkAppId": "1400000001"})
        self.assertEqual(st, 200)
        self.assertNotIn("Error", body["Response"], body)
        return body["Response"]["PullSmsSendStatusSet"]

    # ------------------------------------------------------------ basics
    def test_health_and_loopback(self):
        self.assertEqual(self.mock.get("/health"), (200, b"ok"))
        self.assertTrue(listening_on_loopback_only(self.mock.port))
        with open(self.mock.pid_file) as f:
            self.assertEqual(int(f.read()), self.mock.proc.pid)

    def test_send_ok(self):
        sts = self.statuses(self.send(["+8613900000201", "13900000202"], SessionContext="msg-1"))
        self.assertEqual(len(sts), 2)
        for s, num in zip(sts, ("13900000201", "13900000202")):
            self.assertEqual((s["Code"], s["Message"], s["Fee"], s["IsoCode"]), ("Ok", "send success", 1, "CN"))
            self.assertEqual((s["PhoneNumber"], s["SessionContext"]), ("+86" + num, "msg-1"))
            self.assertTrue(s["SerialNo"])
        self.assertNotEqual(sts[0]["SerialNo"], sts[1]["SerialNo"])
        line = self.mock.log_lines()[-1]
        self.assertEqual((line["action"], line["phones"], line["outcome"], line["status"]),
                         ("SendSms", ["13900000201", "13900000202"], "ok", 200))
        self.assertEqual(line["params"]["SessionContext"], "msg-1")
        self.assertEqual(line["headers"]["x-tc-action"], "SendSms")
        self.assertEqual([r["code"] for r in line["results"]], ["Ok", "Ok"])
        self.assertEqual(self.mock.stats()["accepted"]["13900000201"], 1)
        # template without parameters, TemplateParamSet absent
        body = self.c.send_body(["13900000203"], template="7654321")
        del body["TemplateParamSet"]
        self.assertEqual(self.statuses(self.c.call("SendSms", body))[0]["Code"], "Ok")

    def test_keep_alive(self):
        self.send(["13900000204"])
        sock = self.c.conn.sock
        for _ in range(3):
            self.assertEqual(self.statuses(self.send(["13900000204"]))[0]["Code"], "Ok")
        self.assertIs(self.c.conn.sock, sock)

    # ------------------------------------------------------------ verification
    def test_missing_headers(self):
        for name in ("Authorization", "Content-Type", "Host", "X-TC-Action", "X-TC-Timestamp", "X-TC-Version",
                     "X-TC-Region"):
            headers, raw = self.c.build("SendSms", self.c.send_body(["13900000210"]), drop=(name,))
            msg = self.assertErr(self.c.send_raw(headers, raw), "MissingParameter")
            self.assertIn(name, msg)

    def test_header_values(self):
        body = self.c.send_body(["13900000211"])
        self.assertErr(self.c.call("SendSms", body, extra_headers={"x-tc-version": "2019-07-11"}), "NoSuchVersion")
        self.assertErr(self.c.call("SendSms", body, extra_headers={"x-tc-region": "ap-mars"}), "UnsupportedRegion")
        self.assertErr(self.c.call("SendSms", body, ctype="text/plain"), "InvalidParameter")
        self.assertErr(self.c.call("SendSms", body, ctype="application/x-www-form-urlencoded"), "InvalidParameter")
        self.assertEqual(self.statuses(self.c.call("SendSms", body, ctype="application/json"))[0]["Code"], "Ok")
        self.assertErr(self.c.call("SendSms", body, extra_headers={"x-tc-timestamp": "soon"}), "InvalidParameter")
        self.assertErr(self.c.call("SendSmsX", body), "InvalidAction")
        headers, raw = self.c.build("SendSms", body)
        conn = http.client.HTTPConnection("127.0.0.1", self.mock.port, timeout=10)
        conn.request("GET", "/", headers=dict(headers))
        r = conn.getresponse()
        self.assertEqual((r.status, json.loads(r.read())["Response"]["Error"]["Code"]), (200, "UnsupportedProtocol"))
        conn.close()

    def test_authorization(self):
        body = self.c.send_body(["13900000212"])
        for auth in ("TC3-HMAC-SHA256 Signature=abc", "Bearer x",
                     "TC3-HMAC-SHA256 Credential=AKIDtest/2024-01-01/sms/tc3_request, SignedHeaders=content-type;host",
                     "TC3-HMAC-SHA256 Credential=AKIDtest/today/sms/tc3_request, SignedHeaders=content-type;host, "
                     "Signature=" + "0" * 64):
            self.assertErr(self.c.call("SendSms", body, auth=auth), "AuthFailure.InvalidAuthorization")
        self.assertErr(self.c.call("SendSms", body, secret_id="AKIDother"), "AuthFailure.SecretIdNotFound")
        now = int(time.time())
        for off in (-301, 301, -3600):
            self.assertErr(self.c.call("SendSms", body, ts=now + off), "AuthFailure.SignatureExpire")
        for off in (-290, 290):
            self.assertEqual(self.statuses(self.c.call("SendSms", body, ts=now + off))[0]["Code"], "Ok")
        fail = "AuthFailure.SignatureFailure"
        self.assertErr(self.c.call("SendSms", body, secret_key="wrong"), fail)
        yday = datetime.fromtimestamp(now - 86400, timezone.utc).strftime("%Y-%m-%d")
        self.assertErr(self.c.call("SendSms", body, date=yday), fail)
        self.assertErr(self.c.call("SendSms", body, service="cvm"), fail)
        self.assertErr(self.c.call("SendSms", body, signed="content-type"), fail)
        self.assertErr(self.c.call("SendSms", body, signed="content-type;host;x-tc-missing"), fail)
        self.assertErr(self.c.call("SendSms", body, sign_host="sms.tencentcloudapi.com"), fail)
        self.assertErr(self.c.call("SendSms", body, sign_body=b'{"PhoneNumberSet":[]}'), fail)
        headers, raw = self.c.build("SendSms", body)
        headers = [(k, v.replace("Signature=", "Signature=X")[:-1] if k == "Authorization" else v)
                   for k, v in headers]
        self.assertErr(self.c.send_raw(headers, raw), "AuthFailure.InvalidAuthorization")
        headers, raw = self.c.build("SendSms", body)
        headers = [(k, v[:-64] + v[-64:].upper() if k == "Authorization" else v) for k, v in headers]
        self.assertErr(self.c.send_raw(headers, raw), fail)  # upper-case hex is not the signature
        # more signed headers are fine (values as sent, or lower-cased as Tencent documents)
        self.assertEqual(self.statuses(self.c.call("SendSms", body, signed="content-type;host;x-tc-action"))[0]
                         ["Code"], "Ok")
        headers, raw = self.c.build("SendSms", body, signed="content-type;host;x-tc-action",
                                    extra_headers={"x-tc-action": "sendsms"})
        headers = [(k, "SendSms" if k == "X-TC-Action" else v) for k, v in headers]
        self.assertEqual(self.statuses(self.c.send_raw(headers, raw))[0]["Code"], "Ok")
        self.assertEqual(self.mock.stats()["accepted"]["13900000212"], 4)  # only the four good ones

    def test_replay(self):
        headers, raw = self.c.build("SendSms", self.c.send_body(["13900000213"]))
        self.assertEqual(self.statuses(self.c.send_raw(headers, raw))[0]["Code"], "Ok")
        msg = self.assertErr(self.c.send_raw(headers, raw), "AuthFailure.SignatureFailure")
        self.assertIn("replay", msg)
        # the same poll twice in one second is a replay too (default --replay-check all)
        headers, raw = self.c.build("PullSmsSendStatus", {"Limit": 7, "SmsSdkAppId": "1400000001"})
        self.assertEqual(self.c.send_raw(headers, raw)[0], 200)
        self.assertIn("replay", self.assertErr(self.c.send_raw(headers, raw), "AuthFailure.SignatureFailure"))
        # a forged request (body changed, signature copied) does not burn the signature
        headers, raw = self.c.build("SendSms", self.c.send_body(["13900000213"]), ts=int(time.time()) + 100)
        tampered = raw.replace(b"13900000213", b"13900000214")
        self.assertErr(self.c.send_raw(headers, tampered), "AuthFailure.SignatureFailure")
        self.assertEqual(self.statuses(self.c.send_raw(headers, raw))[0]["Code"], "Ok")
        self.assertEqual(self.mock.stats()["accepted"]["13900000213"], 2)

    # ------------------------------------------------------------ SendSms rules
    def test_send_errors(self):
        n = "13900000220"
        self.assertErr(self.send([]), "MissingParameter.EmptyPhoneNumberSet")
        self.assertErr(self.send([n] * 201), "LimitExceeded.PhoneNumberCountLimit")
        self.assertEqual(len(self.statuses(self.send(["13900000221"] * 200))), 200)
        for field in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
            body = self.c.send_body([n])
            del body[field]
            self.assertIn(field, self.assertErr(self.c.call("SendSms", body), "MissingParameter"))
        self.assertErr(self.send([n], SmsSdkAppId="1400000002"), "InvalidParameterValue.SdkAppIdNotExist")
        self.assertErr(self.send([n], SmsSdkAppId=1400000001), "InvalidParameter")
        self.assertErr(self.send([n], PhoneNumberSet=[13900000220]), "InvalidParameter")
        self.assertErr(self.send([n], template="1111111"), "FailedOperation.TemplateIncorrectOrUnapproved")
        self.assertErr(self.send([n], TemplateId=1234567), "InvalidParameter")
        self.assertErr(self.send([n], SignName=""), "FailedOperation.SignatureIncorrectOrUnapproved")
        body = self.c.send_body([n])
        del body["SignName"]
        self.assertErr(self.c.call("SendSms", body), "FailedOperation.SignatureIncorrectOrUnapproved")
        for params in (["小明"], ["小明", "3月", "x"], ["小明", 3], []):
            self.assertErr(self.send([n], params=params), "InvalidParameterValue.TemplateParameterFormatError")
        self.assertErr(self.send([n], SessionContext="x" * 513), "InvalidParameterValue")
        self.assertErr(self.send([n], SessionContext="好" * 171), "InvalidParameterValue")  # 513 bytes
        self.assertEqual(self.statuses(self.send([n], SessionContext="x" * 512))[0]["Code"], "Ok")
        self.assertErr(self.send([n], TemplateID="1234567"), "UnknownParameter")
        self.assertErr(self.c.call("SendSms", b'{"PhoneNumberSet": ['), "FailedOperation.JsonParseFail")
        self.assertErr(self.c.call("SendSms", b'["13900000220"]'), "FailedOperation.JsonParseFail")
        # a wrong number is a per-number entry; the others go out
        sts = self.statuses(self.send(["+8612900000222", "13900000223", "8613900000224", "+85213900000225"]))
        self.assertEqual([s["Code"] for s in sts], ["InvalidParameterValue.IncorrectPhoneNumber", "Ok",
                                                    "InvalidParameterValue.IncorrectPhoneNumber",
                                                    "InvalidParameterValue.IncorrectPhoneNumber"])
        self.assertEqual((sts[0]["Fee"], sts[0]["SerialNo"], sts[0]["PhoneNumber"]), (0, "", "+8612900000222"))
        st = self.mock.stats()
        self.assertEqual(st["accepted"][n], 1)
        self.assertGreaterEqual(st["rejected"]["InvalidParameterValue.IncorrectPhoneNumber"], 3)

    # ------------------------------------------------------------ faults
    def test_per_number_faults(self):
        a, b, c = "13900000230", "13900000231", "13900000232"
        self.mock.set_faults({a: ["LimitExceeded.PhoneNumberDailyLimit", "InvalidParameterValue.IncorrectPhoneNumber",
                                  "ok"],
                              "+86" + b: "FailedOperation.InsufficientBalanceInSmsPackage"})
        codes = [s["Code"] for s in self.statuses(self.send([a, b, c]))]
        self.assertEqual(codes, ["LimitExceeded.PhoneNumberDailyLimit",
                                 "FailedOperation.InsufficientBalanceInSmsPackage", "Ok"])
        sts = self.statuses(self.send([a, b]))
        self.assertEqual([s["Code"] for s in sts], ["InvalidParameterValue.IncorrectPhoneNumber",
                                                    "FailedOperation.InsufficientBalanceInSmsPackage"])
        self.assertEqual((sts[0]["Fee"], sts[0]["SerialNo"]), (0, ""))
        self.assertEqual([s["Code"] for s in self.statuses(self.send([a]))], ["Ok"])
        self.assertEqual([s["Code"] for s in self.statuses(self.send([a]))], ["Ok"])
        line = self.mock.log_lines()[-3]
        self.assertEqual(line["outcome"], "ok")
        self.assertEqual([r["code"] for r in line["results"]], ["InvalidParameterValue.IncorrectPhoneNumber",
                                                                "FailedOperation.InsufficientBalanceInSmsPackage"])
        # verification failures consume nothing; rewrites take effect
        self.mock.set_faults({a: ["LimitExceeded.PhoneNumberDailyLimit", "ok"]})
        self.assertErr(self.c.call("SendSms", self.c.send_body([a]), secret_key="x"), "AuthFailure.SignatureFailure")
        self.assertEqual(self.statuses(self.send([a]))[0]["Code"], "LimitExceeded.PhoneNumberDailyLimit")
        self.mock.set_faults({})
        self.assertEqual(self.statuses(self.send([a]))[0]["Code"], "Ok")
        st = self.mock.stats()
        self.assertEqual((st["accepted"][a], st["accepted"][c]), (3, 1))
        self.assertNotIn(b, st["accepted"])
        self.assertGreaterEqual(st["rejected"]["FailedOperation.InsufficientBalanceInSmsPackage"], 2)

    def test_whole_request_faults(self):
        a, b = "13900000233", "13900000234"
        self.mock.set_faults({b: ["RequestLimitExceeded", "http500", "bogus", "ok"]})
        self.assertErr(self.send([a, b]), "RequestLimitExceeded")
        self.assertErr(self.send([a, b]), "InternalError", status=500)
        self.assertErr(self.send([a, b]), "MockConfigError")
        self.assertEqual([s["Code"] for s in self.statuses(self.send([a, b]))], ["Ok", "Ok"])
        st = self.mock.stats()
        self.assertEqual((st["accepted"][a], st["accepted"][b]), (1, 1))
        self.assertGreaterEqual(st["rejected"]["http500"], 1)
        self.assertGreaterEqual(st["rejected"]["RequestLimitExceeded"], 1)
        # a whole-request outcome wins over a per-number one
        self.mock.set_faults({a: "LimitExceeded.PhoneNumberDailyLimit", b: "RequestLimitExceeded"})
        self.assertErr(self.send([a, b]), "RequestLimitExceeded")
        self.mock.set_faults({})

    def test_hang(self):
        n = "13900000235"
        self.mock.set_faults({n: ["hang", "ok"]})
        t0 = time.monotonic()
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.send([n])
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        line = [x for x in self.mock.log_lines() if x["phones"] == [n]][-1]
        self.assertEqual((line["outcome"], line["status"]), ("hang", None))
        self.assertEqual(self.statuses(self.send([n]))[0]["Code"], "Ok")
        self.mock.set_faults({n: "hang"})
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.send([n], timeout=0.3)
        self.mock.set_faults({})
        self.assertEqual(self.mock.stats()["accepted"][n], 1)

    def test_lost_and_receipt(self):
        a, b = "13900000236", "13900000237"
        self.drain()
        self.mock.set_faults({a: ["lost", "ok"], b: "LimitExceeded.PhoneNumberDailyLimit"})
        self.mock.set_receipts({})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.send([a, b], SessionContext="lost-1")
        line = [x for x in self.mock.log_lines() if x["phones"] == [a, b]][-1]
        self.assertEqual((line["outcome"], line["status"]), ("lost", None))
        self.assertEqual([r["code"] for r in line["results"]], ["Ok", "LimitExceeded.PhoneNumberDailyLimit"])
        got = self.pull()
        self.assertEqual([(r["SubscriberNumber"], r["ReportStatus"], r["SessionContext"]) for r in got],
                         [(a, "SUCCESS", "lost-1")])
        self.assertEqual(got[0]["SerialNo"], line["results"][0]["serial"])
        st = self.mock.stats()
        self.assertEqual(st["accepted"][a], 1)
        self.assertNotIn(b, st["accepted"])
        self.mock.set_faults({})

    # ------------------------------------------------------------ receipts
    def test_receipts(self):
        ok, fail, none, dflt = "13900000240", "13900000241", "13900000242", "13900000243"
        self.drain()
        self.mock.set_receipts({ok: "DELIVERED", fail: "MOBILE_NOT_ON_SERVICE", none: "none"})
        sts = self.statuses(self.send([ok, fail, none, dflt], SessionContext="ctx-9"))
        serial = {s["PhoneNumber"][3:]: s["SerialNo"] for s in sts}
        self.assertEqual(self.mock.stats()["receipts_pending"], 3)
        first = self.pull(limit=1)
        self.assertEqual(len(first), 1)
        rest = self.pull()
        self.assertEqual(self.pull(), [])  # each receipt once
        got = {r["SubscriberNumber"]: r for r in first + rest}
        self.assertEqual(sorted(got), sorted([ok, fail, dflt]))
        for num, status, desc in ((ok, "SUCCESS", "用户短信接收成功"), (dflt, "SUCCESS", "用户短信接收成功"),
                                  (fail, "FAIL", "MOBILE_NOT_ON_SERVICE")):
            r = got[num]
            self.assertEqual((r["ReportStatus"], r["Description"], r["SerialNo"]), (status, desc, serial[num]))
            self.assertEqual((r["CountryCode"], r["PhoneNumber"], r["SessionContext"]), ("86", "+86" + num, "ctx-9"))
            self.assertRegex(r["UserReceiveTime"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
        st = self.mock.stats()
        self.assertEqual(st["receipts_pending"], 0)
        self.assertGreaterEqual(st["receipts_pulled"], 3)
        line = self.mock.log_lines()[-1]
        self.assertEqual((line["action"], line["pulled"], line["outcome"]), ("PullSmsSendStatus", [], "ok"))
        self.mock.set_receipts({})

    def test_pull_errors(self):
        app = "1400000001"
        self.assertErr(self.c.call("PullSmsSendStatus", {"SmsSdkAppId": app}), "MissingParameter")
        self.assertErr(self.c.call("PullSmsSendStatus", {"Limit": 10}), "MissingParameter")
        for limit in (0, 101):
            self.assertErr(self.c.call("PullSmsSendStatus", {"Limit": limit, "SmsSdkAppId": app}),
                           "InvalidParameterValue")
        self.assertErr(self.c.call("PullSmsSendStatus", {"Limit": "10", "SmsSdkAppId": app}), "InvalidParameter")
        self.assertErr(self.c.call("PullSmsSendStatus", {"Limit": 10, "SmsSdkAppId": "1"}),
                       "InvalidParameterValue.SdkAppIdNotExist")
        self.assertErr(self.c.call("PullSmsSendStatus", {"Limit": 10, "SmsSdkAppId": app}, secret_key="x"),
                       "AuthFailure.SignatureFailure")
        self.assertErr(self.c.call("PullSmsSendStatus", {"Limit": 10, "SmsSdkAppId": app},
                                   ts=int(time.time()) - 400), "AuthFailure.SignatureExpire")
        self.assertErr(self.c.call("PullSmsSendStatus", {"Limit": 10, "SmsSdkAppId": app, "Offset": 0}),
                       "UnknownParameter")

    def test_pull_by_phone_reads_without_taking(self):
        num, other = "13900000260", "13900000261"
        self.mock.set_receipts({num: "MOBILE_NOT_ON_SERVICE"})
        begin = int(time.time()) - 5
        self.statuses(self.send([num, other], SessionContext="ctx-by-phone"))
        app = "1400000001"
        body = {"BeginTime": begin, "Offset": 0, "Limit": 10, "PhoneNumber": "+86" + num,
                "SmsSdkAppId": app}
        for _ in range(2):  # it reads: the same answer twice
            st, ans = self.c.call("PullSmsSendStatusByPhoneNumber", dict(body))
            self.assertEqual(st, 200)
            got = ans["Response"]["PullSmsSendStatusSet"]
            self.assertEqual([(r["SubscriberNumber"], r["ReportStatus"], r["Description"], r["SessionContext"])
                              for r in got], [(num, "FAIL", "MOBILE_NOT_ON_SERVICE", "ctx-by-phone")])
        line = self.mock.log_lines()[-1]
        self.assertEqual((line["action"], line["phones"]), ("PullSmsSendStatusByPhoneNumber", [num]))
        # Before BeginTime, past EndTime, or beyond Offset: nothing.
        for extra in ({"BeginTime": int(time.time()) + 60}, {"EndTime": begin - 1}, {"Offset": 1}):
            st, ans = self.c.call("PullSmsSendStatusByPhoneNumber", dict(body, **extra))
            self.assertEqual(ans["Response"]["PullSmsSendStatusSet"], [], extra)
        self.assertErr(self.c.call("PullSmsSendStatusByPhoneNumber", {k: v for k, v in body.items()
                                                                      if k != "BeginTime"}), "MissingParameter")
        self.assertErr(self.c.call("PullSmsSendStatusByPhoneNumber", dict(body, Limit=0)),
                       "InvalidParameterValue")
        self.assertErr(self.c.call("PullSmsSendStatusByPhoneNumber", dict(body, PhoneNumber="12")),
                       "InvalidParameterValue.IncorrectPhoneNumber")
        self.assertErr(self.c.call("PullSmsSendStatusByPhoneNumber", body, secret_key="x"),
                       "AuthFailure.SignatureFailure")
        self.mock.set_receipts({})
        self.drain()

    def test_stats_format(self):
        st = self.mock.stats()
        for k in ("total", "accepted", "accepted_total", "rejected", "outcomes", "actions", "receipts_pending",
                  "receipts_pulled"):
            self.assertIn(k, st)
        self.assertEqual(st["total"], len(self.mock.log_lines()))
        self.assertEqual(st["total"], sum(st["outcomes"].values()))


class TestTencentReplayCheck(unittest.TestCase):
    def test_replay_check_sendsms_only(self):
        mock = Mock("mock_tencent.py", TC_ARGS + ["--replay-check", "SendSms"])
        c = TcClient(mock.port)
        try:
            pull = {"Limit": 100, "SmsSdkAppId": "1400000001"}
            headers, raw = c.build("PullSmsSendStatus", pull)
            for _ in range(2):
                st, ans = c.send_raw(headers, raw)
                self.assertEqual(ans["Response"]["PullSmsSendStatusSet"], [], ans)
            headers, raw = c.build("SendSms", c.send_body(["13900000251"]))
            self.assertEqual(c.send_raw(headers, raw)[1]["Response"]["SendStatusSet"][0]["Code"], "Ok")
            st, ans = c.send_raw(headers, raw)
            self.assertEqual(ans["Response"]["Error"]["Code"], "AuthFailure.SignatureFailure")
        finally:
            c.close()
            self.assertEqual(mock.stop(), 0)
            mock.cleanup()


class TestTencentClockSkew(unittest.TestCase):
    def test_skew(self):
        mock = Mock("mock_tencent.py", TC_ARGS + ["--clock-skew-s", "-1000"])
        c = TcClient(mock.port)
        try:
            body = c.send_body(["13900000250"])
            st, ans = c.call("SendSms", body)
            self.assertEqual(ans["Response"]["Error"]["Code"], "AuthFailure.SignatureExpire")
            st, ans = c.call("SendSms", body, ts=int(time.time()) - 1000)
            self.assertEqual(ans["Response"]["SendStatusSet"][0]["Code"], "Ok")
        finally:
            c.close()
            self.assertEqual(mock.stop(), 0)
            self.assertFalse(os.path.exists(mock.port_file) or os.path.exists(mock.pid_file))
            mock.cleanup()


if __name__ == "__main__":
    unittest.main()
