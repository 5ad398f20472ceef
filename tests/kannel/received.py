#!/usr/bin/env python3
"""List the SMS that reached the fake SMS centre of a tests/kannel/up.sh run.

    python3 tests/kannel/received.py RUN_DIR [--count] [--json]
                                             [--wait N [--timeout S]]

Prints one message per line as TO<TAB>TEXT (UTF-8). Inside TEXT a backslash,
TAB, CR and LF are written as \\\\, \\t, \\r and \\n, so a message is always one
line. The parts of a concatenated SMS are joined back into one message, which
is listed only once all its parts arrived.

  --count       print the number of messages instead
  --json        one JSON object per message: from, to, text, parts
  --wait N      first wait until at least N messages arrived; exit 1 (after
                printing what is there) if they do not within --timeout S
                seconds (default 10)

Source: RUN_DIR/fakesmsc.log. fakesmsc (run with -m 0 and a debug log level)
logs every line it gets from bearerbox as "Got message K: <LINE>", where
LINE is one of (Kannel 1.4.5, fake SMSC protocol):
    FROM TO text RAW-TEXT            coding 0: the text itself, UTF-8
    FROM TO data URL-BYTES           coding 1: 8-bit data
    FROM TO ucs-2 URL-BYTES          coding 2: UTF-16BE
    FROM TO udh URL-UDH data URL-BYTES
                                     a part with a user data header (any
                                     coding; the line does not say which)
URL-BYTES are url-encoded with '+' for a space. A raw text with a line
break arrives as several LINEs; the ones that follow are glued back with LF.
"""

import argparse
import json
import os
import re
import sys
import time
from urllib.parse import unquote_to_bytes

GOT = re.compile(r"Got message \d+: <(.*)>$")
HEAD = re.compile(r"(\S*) (\S+) (text|data|ucs-2|udh) ?(.*)$", re.S)


def url_bytes(s):
    return unquote_to_bytes(s.replace("+", " "))


def decode_udh_payload(b):
    """The coding of a UDH part is not on the wire: UTF-8 text without
    control characters is taken as coding 0, anything else as UTF-16BE."""
    try:
        t = b.decode("utf-8")
        if not any(ord(c) < 32 and c not in "\n\r" for c in t):
            return t
    except UnicodeDecodeError:
        pass
    if len(b) % 2 == 0:
        return b.decode("utf-16-be", "replace")
    return b.decode("utf-8", "replace")


def concat_info(udh):
    """(reference, total, sequence) of a concatenation header, else None."""
    if not udh:
        return None
    end = min(len(udh), 1 + udh[0])
    i = 1
    while i + 1 < end:
        iei, length = udh[i], udh[i + 1]
        ie = udh[i + 2:i + 2 + length]
        if iei == 0x00 and length == 3 and len(ie) == 3:
            return ie[0], ie[1], ie[2]
        if iei == 0x08 and length == 4 and len(ie) == 4:
            return (ie[0] << 8) | ie[1], ie[2], ie[3]
        i += 2 + length
    return None


def read_lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            raw = f.read()
    except FileNotFoundError:
        return []
    lines = []
    for entry in raw.split("\n"):
        m = GOT.search(entry)
        if m:
            lines.append(m.group(1))
    return lines


def messages(run_dir):
    """Complete messages in order of arrival of their first part."""
    out = []        # dicts; a concatenated one is filled in as parts arrive
    pending = {}    # (from, to, ref, total) -> message dict
    last_text = None
    for line in read_lines(os.path.join(run_dir, "fakesmsc.log")):
        m = HEAD.match(line)
        if not m:
            if last_text is not None:  # the rest of a raw text after a LF
                last_text["text"] += "\n" + line
            continue
        sender, to, kind, rest = m.groups()
        last_text = None
        if kind == "text":
            msg = {"from": sender, "to": to, "text": rest, "parts": 1}
            last_text = msg
        elif kind == "data":
            msg = {"from": sender, "to": to, "text": url_bytes(rest).decode("utf-8", "replace"), "parts": 1}
        elif kind == "ucs-2":
            msg = {"from": sender, "to": to, "text": url_bytes(rest).decode("utf-16-be", "replace"), "parts": 1}
        else:
            udh_s, _, data_s = rest.partition(" data ")
            udh, data = url_bytes(udh_s), url_bytes(data_s)
            info = concat_info(udh)
            if info is None or info[1] < 2:
                out.append({"from": sender, "to": to, "text": decode_udh_payload(data), "parts": 1})
                continue
            ref, total, seq = info
            key = (sender, to, ref, total)
            msg = pending.get(key)
            if msg is None or seq in msg["_parts"]:  # new message (a reference is reused later)
                msg = {"from": sender, "to": to, "text": None, "parts": total, "_parts": {}}
                pending[key] = msg
                out.append(msg)
            msg["_parts"][seq] = data
            if len(msg["_parts"]) == total and all(s in msg["_parts"] for s in range(1, total + 1)):
                msg["text"] = decode_udh_payload(b"".join(msg["_parts"][s] for s in range(1, total + 1)))
                del pending[key]
            continue
        out.append(msg)
    complete = []
    for msg in out:
        if msg["text"] is None:
            continue
        msg.pop("_parts", None)
        complete.append(msg)
    incomplete = len(out) - len(complete)
    return complete, incomplete


def escape(text):
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n")


def main():
    ap = argparse.ArgumentParser(description="SMS that reached the fake SMSC of a tests/kannel/up.sh run")
    ap.add_argument("run_dir")
    ap.add_argument("--count", action="store_true", help="print only the number of messages")
    ap.add_argument("--json", action="store_true", help="one JSON object per message")
    ap.add_argument("--wait", type=int, metavar="N", help="wait until at least N messages arrived")
    ap.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds for --wait (default 10)")
    args = ap.parse_args()
    if not os.path.isdir(args.run_dir):
        ap.error(f"no run dir {args.run_dir}")

    msgs, incomplete = messages(args.run_dir)
    rc = 0
    if args.wait is not None:
        deadline = time.monotonic() + args.timeout
        while len(msgs) < args.wait:
            if time.monotonic() >= deadline:
                print(f"received.py: {len(msgs)} of {args.wait} messages after {args.timeout:g}s",
                      file=sys.stderr)
                rc = 1
                break
            time.sleep(0.1)
            msgs, incomplete = messages(args.run_dir)
    if incomplete:
        print(f"received.py: {incomplete} concatenated message(s) still missing parts (not listed)",
              file=sys.stderr)

    if args.count:
        print(len(msgs))
    elif args.json:
        for m in msgs:
            print(json.dumps(m, ensure_ascii=False))
    else:
        for m in msgs:
            print(f"{m['to']}\t{escape(m['text'])}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
