"""The HTTP server that yizhan's mock SMS gateways and providers share.

mock_aliyun.py, mock_tencent.py and mockgw.py differ in what they check and
answer; how they listen, read a request, answer it, hold it unanswered and
start and stop is the same, and lives here. Python 3 standard library only.

  write_atomic, remove_if   the pid and port files
  Handler                   a request handler base: /health, /stats, reply,
                            reply_json, hang, read_body; a mock adds
                            handle_api and stats
  Server                    a thread a connection, never waited for; quiet
                            when a client goes away
  parser, listen            the --port, --port-file, --pid-file options and
                            the server they open
  serve                     serves until SIGTERM or SIGINT, then cleans up

Provider helpers (what mock_aliyun.py and mock_tencent.py share):
  KEY_RE, national          a mainland mobile number, national form
  MockConfigError, load_map a faults or receipts file keyed by number
  receipt_for               the receipt a receipts map gives a number
  Decision                  what a provider answers to one request
  Provider                  a provider base: lock, clock, request numbers,
                            fault drawing, replay cache, counters, record()
                            and stats()
  ProviderHandler           a Handler whose answer() logs a request,
                            counts it and answers it
  provider_parser, run_provider
                            the --log, --faults, --receipts, --clock-skew-s
                            options; parse, build the provider, serve

A mock's main() is: parse its options (parser() gives the first three),
build its state, listen(), hand the server what its handler needs, serve()
(run_provider() does all but the first for a provider mock).
"""

import argparse
import http.server
import json
import os
import re
import select
import selectors
import signal
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

MAX_BODY = 1 << 20


class BadRequest(Exception):
    """A request body that cannot be read; the message says why."""


def write_atomic(path, text):
    """Writes text to path by path.tmp + rename, so a reader never sees half."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def remove_if(path, content):
    """Remove path if it still holds content (not another run's file)."""
    if not path:
        return
    try:
        with open(path) as f:
            mine = f.read().strip() == content
        if mine:
            os.remove(path)
    except OSError:
        pass


class Handler(http.server.BaseHTTPRequestHandler):
    """What a mock's handler builds on. GET /health answers "ok", GET /stats
    the mock's stats(); any other GET and every POST go to its handle_api().
    A subclass defines those two and server_version, and may set json_type
    (the Content-Type of reply_json) and length_over_max (what read_body
    says of a Content-Length over MAX_BODY). The server must have hang_s
    (listen() sets it)."""

    protocol_version = "HTTP/1.1"
    sys_version = ""
    disable_nagle_algorithm = True  # headers+body go in one write anyway
    json_type = "application/json"
    length_over_max = "bad content-length"

    def log_message(self, format, *args):  # no per-request stderr noise
        pass

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/health":
            self.reply(200, "ok", ctype="text/plain")
        elif path == "/stats":
            self.reply_json(200, self.stats())
        else:
            self.handle_api()

    def do_POST(self):
        self.handle_api()

    def reply(self, status, body, ctype, extra=()):
        """Answers status with body (str or bytes) and the (name, value) pairs
        of extra as more headers, in one write."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        reason = self.responses.get(status, ("",))[0]
        head = [f"HTTP/1.1 {status} {reason}",
                f"Server: {self.server_version}",
                f"Content-Type: {ctype}",
                f"Content-Length: {len(body)}"]
        head.extend(f"{k}: {v}" for k, v in extra)
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.wfile.flush()

    def reply_json(self, status, obj, extra=()):
        self.reply(status, json.dumps(obj, ensure_ascii=False, separators=(",", ":")), self.json_type,
                   extra=extra)

    def hang(self):
        """No answer for --hang-s seconds, or until the client hangs up."""
        self.close_connection = True
        deadline = time.monotonic() + self.server.hang_s
        poller = select.poll()
        poller.register(self.connection, select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if not poller.poll(left * 1000):
                continue
            try:
                peek = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not peek:
                return  # the client gave up
            time.sleep(max(0.0, deadline - time.monotonic()))  # pipelined bytes: just wait
            return

    def read_body(self):
        """The request body (chunked or by Content-Length, at most MAX_BODY
        bytes); raises BadRequest when it cannot be read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, size = [], 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise BadRequest("bad chunk size")
                if n == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                size += n
                if size > MAX_BODY:
                    raise BadRequest("body too large")
                chunks.append(self.rfile.read(n))
                self.rfile.readline(3)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadRequest("bad content-length")
        if length < 0 or length > MAX_BODY:
            raise BadRequest(self.length_over_max if length > MAX_BODY else "bad content-length")
        return self.rfile.read(length) if length else b""


class Server(http.server.ThreadingHTTPServer):
    """One daemon thread a connection; exit does not wait for them (a held
    request may hang for --hang-s), and a client that went away is not an
    error worth a traceback."""

    daemon_threads = True
    block_on_close = False  # never join hanging threads on exit
    request_queue_size = 1024
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client went away
        super().handle_error(request, client_address)


def parser(description):
    """An ArgumentParser for a mock, with the options that listen() and
    serve() are given first: --port, --port-file, --pid-file."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: the kernel picks)")
    ap.add_argument("--port-file", help="write the port here (FILE.tmp + rename) once listening")
    ap.add_argument("--pid-file", help="write the pid here (FILE.tmp + rename)")
    return ap


def listen(handler, port, idle_timeout, hang_s, server_class=Server):
    """A server_class listening on 127.0.0.1:port (0: the kernel picks) with
    handler, which closes a keep-alive connection idle for idle_timeout s
    (0 or less: never) and whose hang() holds hang_s s. Raises OSError if it
    cannot listen."""
    handler.timeout = idle_timeout if idle_timeout > 0 else None
    server = server_class(("127.0.0.1", port), handler)
    server.hang_s = hang_s
    return server


def _no_action(signum, frame):
    """The Python side of SIGTERM and SIGINT: their wakeup byte does the work."""


def _serve_until_signal(server, rfd):
    """Answers connections until SIGTERM or SIGINT is written to rfd."""
    with selectors.DefaultSelector() as sel:
        sel.register(server, selectors.EVENT_READ)
        sel.register(rfd, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                if key.fileobj is server:
                    server.handle_request()  # it is ready: accepts at once
                else:
                    got = os.read(rfd, 64)
                    if signal.SIGTERM in got or signal.SIGINT in got:
                        return


def serve(server, name, pid_file, port_file, state):
    """Serves until SIGTERM or SIGINT, then stops cleanly; returns 0.

    Writes pid_file and then port_file (each FILE.tmp + rename, either may be
    None; the port file last, as the sign that the server listens) and says
    on stderr where it listens. On the way out, whether stopped by a signal
    or by an error (which goes on to the caller), it closes the server, then
    state.log (the mock's request log, a file or None, which its handlers
    write under state.lock and skip once it is None) under state.lock, and
    removes the pid and port files if they still hold this run's values.
    Must run on the main thread.

    The mocks used to raise SystemExit from a Python signal handler, into
    whatever serve_forever was doing, and once a mock did not exit on a
    SIGTERM (not seen again, cause not found). Now nothing is raised: with
    signal.set_wakeup_fd the C-level handler writes the signal's number into
    a pipe, and the serving loop waits on that pipe as on the listening
    socket (serve_forever cannot wait on it: it stops only by shutdown()
    from another thread, and sees that at its next poll). A signal that
    comes at any moment after the handlers are set, even before the loop
    starts, stays in the pipe until the loop reads it; the loop then ends at
    once, and a second signal does nothing more."""
    pid = os.getpid()
    port = server.server_address[1]
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, _no_action)
    signal.signal(signal.SIGINT, _no_action)
    try:
        if pid_file:
            write_atomic(pid_file, f"{pid}\n")
        if port_file:
            write_atomic(port_file, f"{port}\n")
        print(f"{name}: listening on 127.0.0.1:{port} (pid {pid})", file=sys.stderr, flush=True)
        _serve_until_signal(server, rfd)
    finally:
        server.server_close()
        with state.lock:
            if state.log:
                state.log.close()
                state.log = None
        remove_if(pid_file, str(pid))
        remove_if(port_file, str(port))
    return 0


# ---------------------------------------------------------------- provider helpers
KEY_RE = re.compile(r"(?:\+?86)?(1[3-9][0-9]{9})")


def national(number, pattern=KEY_RE):
    """'13900000001', '8613900000001', '+8613900000001' -> '13900000001'
    (what pattern, whose group 1 is the national number, accepts); else None."""
    m = pattern.fullmatch(number) if isinstance(number, str) else None
    return m.group(1) if m else None


class MockConfigError(Exception):
    pass


def load_map(path, what, list_values):
    """A JSON object file keyed by number; missing file -> {}."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise MockConfigError(f"{what} file {path}: {e}")
    if not isinstance(obj, dict):
        raise MockConfigError(f"{what} file {path}: not a JSON object")
    out = {}
    for k, v in obj.items():
        if list_values and isinstance(v, str):
            v = [v]
        ok = (isinstance(v, list) and all(isinstance(x, str) for x in v)) if list_values else isinstance(v, str)
        if not ok:
            raise MockConfigError(f"{what} file {path}: bad value for {k!r}")
        out[national(k) or k] = v
    return out


def receipt_for(receipts, number):
    """The receipt of a message to number: "DELIVERED" (the default), a
    failure code, or None (the receipts map says "none": never a receipt)."""
    r = receipts.get(number, "DELIVERED")
    if r.lower() == "none":
        return None
    if r.upper() == "DELIVERED":
        return "DELIVERED"
    return r


class Decision:
    """What to answer: status + body, or mode "hang"/"lost" (no answer).
    accepted: the numbers sent to; failed: the codes of numbers refused."""

    def __init__(self, status, body, outcome, mode="answer", extra=None, accepted=(), failed=()):
        self.status = status
        self.body = body
        self.outcome = outcome
        self.mode = mode
        self.extra = extra or {}
        self.accepted = list(accepted)
        self.failed = list(failed)


class Provider:
    """What a mock provider builds on: its lock, clock (--clock-skew-s),
    faults and receipts paths, request numbers, fault drawing, replay
    cache, sent messages, counters and request log (--log). A subclass adds
    verification and actions, and may add to stats() by more_stats()."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.skew = args.clock_skew_s
        self.faults_path = args.faults
        self.receipts_path = args.receipts
        self.seq = 0
        self.fault_pos = {}  # national -> (list as JSON, next index)
        self.messages = []
        self.total = 0
        self.accepted = {}
        self.rejected = {}
        self.outcomes = {}
        self.actions = {}
        self.log = None

    def open_log(self, path):
        self.log = open(path, "a", buffering=1, encoding="utf-8") if path else None

    def next_n(self):
        with self.lock:
            self.seq += 1
            return self.seq

    def now(self):
        return time.time() + self.skew

    def draw(self, faults, number):
        """Next outcome for number (under self.lock); None if not listed."""
        lst = faults.get(number)
        if lst is None:
            return None
        if not lst:
            return "ok"
        key = json.dumps(lst)
        prev = self.fault_pos.get(number)
        idx = prev[1] if prev and prev[0] == key else 0
        self.fault_pos[number] = (key, idx + 1)
        return lst[min(idx, len(lst) - 1)]

    def seen_before(self, cache, key, keep_s, check=True):
        """Whether key (a nonce, a signature) is in cache, an OrderedDict of
        key -> monotonic time seen kept for keep_s s; remembers it if not.
        With check false it only forgets the old keys, and answers False."""
        with self.lock:
            mono = time.monotonic()
            while cache:
                first, seen = next(iter(cache.items()))
                if mono - seen <= keep_s:
                    break
                cache.popitem(last=False)
            if not check:
                return False
            if key in cache:
                return True
            cache[key] = mono
            return False

    def record(self, rec, decision):
        with self.lock:
            self.total += 1
            out = decision.outcome
            self.outcomes[out] = self.outcomes.get(out, 0) + 1
            act = rec["action"]
            self.actions[act] = self.actions.get(act, 0) + 1
            if out not in ("ok", "lost"):
                self.rejected[out] = self.rejected.get(out, 0) + 1
            for code in decision.failed:
                self.rejected[code] = self.rejected.get(code, 0) + 1
            for num in decision.accepted:
                self.accepted[num] = self.accepted.get(num, 0) + 1
            if self.log is not None:
                self.log.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
                self.log.flush()

    def more_stats(self):
        """More stats fields (called under self.lock)."""
        return {}

    def stats(self):
        with self.lock:
            out = {"total": self.total, "accepted": dict(self.accepted),
                   "accepted_total": sum(self.accepted.values()), "rejected": dict(self.rejected),
                   "outcomes": dict(self.outcomes), "actions": dict(self.actions)}
            out.update(self.more_stats())
            return out


class ProviderHandler(Handler):
    """A Handler for a server whose provider is a Provider."""

    def answer(self, n, url, fields, phones, decision):
        """Logs the request (n, t, method, path, then fields, phones, outcome,
        status and the decision's extra), counts it, then answers it as
        decided: hangs, closes without an answer (lost) or replies."""
        rec = {"n": n, "t": time.time(), "method": self.command, "path": url.path}
        rec.update(fields)
        rec.update(phones=phones, outcome=decision.outcome, status=decision.status)
        rec.update(decision.extra)
        self.server.provider.record(rec, decision)
        if decision.mode == "hang":
            self.hang()
        elif decision.mode == "lost":
            self.close_connection = True  # accepted, but the answer never comes
        else:
            self.reply_json(decision.status, decision.body)

    def stats(self):
        return self.server.provider.stats()


def provider_parser(description):
    """parser() and the options every provider mock has: --log, --faults,
    --receipts, --clock-skew-s."""
    ap = parser(description)
    ap.add_argument("--log", help="append one JSON line per request")
    ap.add_argument("--faults", help="JSON file: national number -> list of outcomes")
    ap.add_argument("--receipts", help="JSON file: national number -> DELIVERED | failure code | none")
    ap.add_argument("--clock-skew-s", type=float, default=0, help="server clock = machine clock + S")
    return ap


def run_provider(ap, argv, provider_class, handler, name):
    """Parses argv with ap (which must have --hang-s and --idle-timeout too),
    builds provider_class(args) (a ValueError or OSError is a usage error,
    exit 2), listens with handler and serves as name until a signal."""
    args = ap.parse_args(argv)
    try:
        provider = provider_class(args)
    except (ValueError, OSError) as e:
        ap.error(str(e))

    server = listen(handler, args.port, args.idle_timeout, args.hang_s)
    server.provider = provider
    return serve(server, name, args.pid_file, args.port_file, provider)
