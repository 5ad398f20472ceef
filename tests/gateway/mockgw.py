#!/usr/bin/env python3
"""Mock SMS HTTP gateway for yizhan's tests (Python 3 standard library only).

Listens on 127.0.0.1 only and accepts an SMS send on any path (tests use
/send) by GET (query string), POST application/x-www-form-urlencoded or POST
application/json. The parameters become a flat dict of strings (query string
parameters are merged in, body wins); nested JSON objects become dotted keys,
lists and other non-strings their JSON text.

Answers:
  success            200 {"code":0,"msgid":"gw-<n>"}
  --reject-prefix P  400 {"code":1001,"error":"invalid number"} for every `to`
                     starting with P, always, whatever the faults
  fault 500          500 {"code":500,"error":"internal"} (any other 4xx/5xx
                     code given as a fault name answers likewise)
  fault 429          429 {"code":429,"error":"rate limited"} + Retry-After
  fault slow         success, but only after --slow-ms
  fault timeout      no answer: waits --hang-s (or until the client hangs up),
                     then closes
  fault reset        closes the connection with RST (SO_LINGER 0), no answer
  fault garbage      200 text/html "<html>proxy error" (not JSON)
  malformed body     400 {"code":400,"error":"bad request"}
  GET /stats         JSON counts per outcome (+ "total", "accepted")
  GET /health        200 "ok"

Which fault a request gets, in this order:
  1. `to` starts with a --reject-prefix       -> reject
  2. its key already had --fault-limit-per-key faults -> ok
  3. one of the first --fail-first (non-rejected) requests -> 500
  4. a draw from --faults with random.Random(--seed); the rest -> ok
The key of a request is its --key-field parameter (default "key"); a request
without one is keyed by to + text.

Every send request is appended to --log as one JSON line, written and flushed
before the answer (also for timeout and reset):
  {"n":1,"t":1700000000.123,"method":"POST","path":"/send","params":{...},
   "headers":{"content-type":...,"authorization":...,"x-...":...},
   "outcome":"ok","status":200}
outcome is ok|slow|500|429|timeout|reset|garbage|reject|bad_request; "ok"
and "slow" mean the message was accepted (delivered). status is the HTTP
status answered, null for timeout and reset.

Note: libcurl re-sends a request by itself, once, when a REUSED keep-alive
connection closes or resets before any byte of the answer; that re-send is a
new request here (new n, its own fault draw). So with keep-alive most
"reset" faults are invisible to the client and show up as an extra log
line; only a reset on a fresh connection reaches the client (CURLE_RECV_ERROR,
curl exit 56).

Usage:
  python3 tests/gateway/mockgw.py --port-file RUN/port --pid-file RUN/pid \\
      --log RUN/requests.jsonl [--faults "500=0.1,429=0.05,timeout=0.02,
      slow=0.05,reset=0.05,garbage=0.05"] [--seed 1] [--retry-after 1]
      [--slow-ms 300] [--hang-s 30] [--reject-prefix +8613999]...
      [--fault-limit-per-key N] [--fail-first N] [--key-field key]
      [--idle-timeout 60] [--port 0]

The port file (written via FILE.tmp + rename once listening) holds the port
the kernel picked; SIGTERM or SIGINT stops the server cleanly (exit 0) and
removes the pid and port files.
"""

import json
import os
import random
import socket
import socketserver
import struct
import sys
import threading
import time
from urllib.parse import parse_qsl, urlsplit

# mockhttp, next to this file, is the HTTP server the mocks share; importing
# it must leave no __pycache__ in the source tree.
sys.dont_write_bytecode = True
import mockhttp  # noqa: E402

SPECIAL = ("timeout", "slow", "reset", "garbage")
ACCEPTED = ("ok", "slow")


def parse_faults(spec):
    """'500=0.1,timeout=0.02' -> [('500', 0.1), ('timeout', 0.02)]"""
    faults = []
    total = 0.0
    for item in filter(None, (s.strip() for s in (spec or "").split(","))):
        name, sep, prob = item.partition("=")
        name = name.strip().lower()
        if not sep:
            raise ValueError(f"fault '{item}' is not NAME=PROBABILITY")
        if name not in SPECIAL and not (name.isdigit() and 400 <= int(name) <= 599):
            raise ValueError(f"unknown fault '{name}' (use a 4xx/5xx code or one of {', '.join(SPECIAL)})")
        p = float(prob)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"fault '{name}': probability {p} not in [0, 1]")
        total += p
        faults.append((name, p))
    if total > 1.0 + 1e-9:
        raise ValueError(f"fault probabilities add up to {total} > 1")
    return faults


def flatten(obj, prefix, out):
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            flatten(v, name + ".", out)
        elif isinstance(v, str):
            out[name] = v
        else:
            out[name] = json.dumps(v, ensure_ascii=False, separators=(",", ":"))


class State:
    """Fault decisions, counters and the request log, all under one lock."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.rng = random.Random(args.seed)
        self.faults = parse_faults(args.faults)
        self.reject_prefixes = tuple(args.reject_prefix or ())
        self.fault_limit = args.fault_limit_per_key
        self.fail_first_left = args.fail_first
        self.key_field = args.key_field
        self.seq = 0
        self.key_faults = {}
        names = ["ok", "slow", "500", "429", "timeout", "reset", "garbage", "reject", "bad_request"]
        names += [n for n, _ in self.faults if n not in names]
        self.counts = dict.fromkeys(names, 0)
        self.log = open(args.log, "a", buffering=1, encoding="utf-8") if args.log else None

    def _draw(self):
        r = self.rng.random()
        acc = 0.0
        for name, p in self.faults:
            acc += p
            if r < acc:
                return name
        return "ok"

    def decide(self, params, bad):
        """Pick the outcome of one send request; returns (n, outcome)."""
        to = params.get("to", "")
        key = params.get(self.key_field)
        if key is None:
            key = to + "\0" + params.get("text", "")
        with self.lock:
            self.seq += 1
            n = self.seq
            if bad:
                outcome = "bad_request"
            elif self.reject_prefixes and to.startswith(self.reject_prefixes):
                outcome = "reject"
            elif self.fault_limit and self.key_faults.get(key, 0) >= self.fault_limit:
                outcome = "ok"
            elif self.fail_first_left > 0:
                self.fail_first_left -= 1
                outcome = "500"
            else:
                outcome = self._draw()
            if outcome not in ACCEPTED and outcome not in ("reject", "bad_request"):
                self.key_faults[key] = self.key_faults.get(key, 0) + 1
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
        return n, outcome

    def record(self, rec):
        if self.log is None:
            return
        line = json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self.lock:
            if self.log is None:  # closing down
                return
            self.log.write(line)
            self.log.flush()

    def stats(self):
        with self.lock:
            d = dict(self.counts)
        d["total"] = sum(d.values())
        d["accepted"] = sum(d[k] for k in ACCEPTED)
        return d


class Handler(mockhttp.Handler):
    server_version = "mockgw/1"

    # ------------------------------------------------------------ answers
    def reset(self):
        """Close with RST: SO_LINGER 0, and no FIN first."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())
        except OSError:
            pass

    # ------------------------------------------------------------ request
    def parse_params(self, query, body):
        params = dict(parse_qsl(query, keep_blank_values=True, errors="replace"))
        if self.command != "POST" or not body:
            return params
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype == "application/json" or ctype.endswith("+json") or \
                (ctype != "application/x-www-form-urlencoded" and body.lstrip()[:1] == b"{"):
            try:
                obj = json.loads(body)
            except ValueError:
                raise mockhttp.BadRequest("bad json")
            if not isinstance(obj, dict):
                raise mockhttp.BadRequest("json body is not an object")
            flatten(obj, "", params)
        else:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise mockhttp.BadRequest("body is not utf-8")
            params.update(parse_qsl(text, keep_blank_values=True))
        return params

    def selected_headers(self):
        out = {}
        for k, v in self.headers.items():
            k = k.lower()
            if k in ("content-type", "authorization", "idempotency-key") or k.startswith("x-"):
                out[k] = v
        return out

    def handle_api(self):
        url = urlsplit(self.path)
        bad = None
        params = {}
        try:
            body = self.read_body()
            params = self.parse_params(url.query, body)
        except mockhttp.BadRequest as e:
            bad = str(e)
            self.close_connection = True  # the body may not have been consumed
        state = self.server.state
        n, outcome = state.decide(params, bad)
        status = {"ok": 200, "slow": 200, "garbage": 200, "reject": 400,
                  "bad_request": 400, "timeout": None, "reset": None}.get(outcome)
        if status is None and outcome.isdigit():
            status = int(outcome)
        state.record({"n": n, "t": time.time(), "method": self.command, "path": url.path,
                      "params": params, "headers": self.selected_headers(),
                      "outcome": outcome, "status": status})
        if outcome == "ok":
            answer = {"code": 0, "msgid": f"gw-{n}"}
            if self.server.pad:
                answer["pad"] = "x" * self.server.pad
            self.reply_json(200, answer)
        elif outcome == "slow":
            time.sleep(self.server.slow_ms / 1000.0)
            self.reply_json(200, {"code": 0, "msgid": f"gw-{n}"})
        elif outcome == "reject":
            self.reply_json(400, {"code": 1001, "error": "invalid number"})
        elif outcome == "bad_request":
            self.reply_json(400, {"code": 400, "error": f"bad request: {bad}"})
        elif outcome == "garbage":
            self.reply(200, "<html>proxy error</html>", ctype="text/html")
        elif outcome == "timeout":
            self.hang()
        elif outcome == "reset":
            self.reset()
        elif outcome == "429":
            self.reply_json(429, {"code": 429, "error": "rate limited"},
                            extra=[("Retry-After", str(self.server.retry_after))])
        elif outcome == "500":
            self.reply_json(500, {"code": 500, "error": "internal"})
        else:
            self.reply_json(status, {"code": status, "error": self.responses.get(status, ("error",))[0].lower()})

    def stats(self):
        return self.server.state.stats()


class Server(mockhttp.Server):
    # Unlike the provider mocks, this one has always reported a client that
    # went away with a traceback on stderr; it keeps doing so.
    handle_error = socketserver.BaseServer.handle_error


def main(argv=None):
    ap = mockhttp.parser("Mock SMS HTTP gateway for tests (127.0.0.1 only).")
    ap.add_argument("--log", help="append one JSON line per send request")
    ap.add_argument("--faults", default="", help='e.g. "500=0.1,429=0.05,timeout=0.02,slow=0.05,reset=0.05,garbage=0.05"')
    ap.add_argument("--seed", type=int, default=None, help="seed for random.Random")
    ap.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds for 429 (default 1)")
    ap.add_argument("--slow-ms", type=int, default=300, help="delay of the 'slow' fault (default 300)")
    ap.add_argument("--hang-s", type=float, default=30, help="how long 'timeout' holds the request (default 30)")
    ap.add_argument("--reject-prefix", action="append", default=[], help="400 code 1001 for `to` with this prefix (repeatable)")
    ap.add_argument("--fault-limit-per-key", type=int, default=0, help="after N faults for a key always succeed (0: no limit)")
    ap.add_argument("--fail-first", type=int, default=0, help="the first N (non-rejected) requests get 500")
    ap.add_argument("--key-field", default="key", help="parameter that keys --fault-limit-per-key (default key)")
    ap.add_argument("--pad", type=int, default=0, help="add N bytes of padding to each success answer")
    ap.add_argument("--idle-timeout", type=float, default=60, help="close idle keep-alive connections after S seconds")
    args = ap.parse_args(argv)
    try:
        state = State(args)
    except (ValueError, OSError) as e:
        ap.error(str(e))

    server = mockhttp.listen(Handler, args.port, args.idle_timeout, args.hang_s, server_class=Server)
    server.state = state
    server.retry_after = args.retry_after
    server.slow_ms = args.slow_ms
    server.pad = args.pad
    return mockhttp.serve(server, "mockgw", args.pid_file, args.port_file, state)


if __name__ == "__main__":
    sys.exit(main())
