#!/usr/bin/env bash
# Integration test: yizhan's shipped kannel plugin against a real Kannel
# 1.4.5 (bearerbox + smsbox) and Kannel's fake SMS centre, on loopback.
#
#   tests/kannel/test_kannel.sh YIZHAN_BINARY
#
# Run by ctest as 'kannel_integration'. It starts Kannel with up.sh in a
# fresh temporary directory, queues five sends (one of them a repeated key)
# and one with a bad number, delivers with 'yizhan run --until-idle' and
# checks what reached the fake SMSC (numbers, texts byte for byte, codings,
# parts) and what the outbox says. Whatever happens, Kannel is stopped by
# its pid files and the directory removed.
#
# Exit 0 pass, 1 fail, 77 skip: ONLY when /usr/sbin/bearerbox is missing and
# YZ_ALLOW_SKIP=1. Without Kannel the test fails otherwise: run
# scripts/setup.sh (packages kannel kannel-extras).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BEARERBOX=/usr/sbin/bearerbox

say() { echo "test_kannel: $*" >&2; }

[ $# -eq 1 ] || { echo "usage: $0 YIZHAN_BINARY" >&2; exit 2; }

if [ ! -e "$BEARERBOX" ]; then
  if [ "${YZ_ALLOW_SKIP:-}" = 1 ]; then
    say "SKIP: $BEARERBOX is missing (YZ_ALLOW_SKIP=1)"
    exit 77
  fi
  say "FAIL: $BEARERBOX is missing: run scripts/setup.sh (it installs the" \
    "packages kannel kannel-extras); set YZ_ALLOW_SKIP=1 to skip instead"
  exit 1
fi
command -v python3 >/dev/null || { say "FAIL: python3 is missing: run scripts/setup.sh"; exit 1; }

if [ ! -f "$1" ] || [ ! -x "$1" ]; then say "FAIL: $1 is not an executable"; exit 1; fi
YIZHAN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
export YIZHAN_SHIPPED_PLUGINS="${YIZHAN_SHIPPED_PLUGINS:-$(cd "$HERE/../.." && pwd)/plugins}"
[ -f "$YIZHAN_SHIPPED_PLUGINS/kannel.lua" ] ||
  { say "FAIL: no kannel.lua in YIZHAN_SHIPPED_PLUGINS=$YIZHAN_SHIPPED_PLUGINS"; exit 1; }
unset YIZHAN_HOME
# Loopback traffic must never go through a proxy (libcurl and urllib both
# honour these variables).
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
export LC_ALL=C.UTF-8

WORK="$(mktemp -d "${TMPDIR:-/tmp}/yz-kannel.XXXXXX")"
RUN="$WORK/kannel"
DATA="$WORK/data"
LOGS="$WORK/logs"
mkdir "$RUN" "$LOGS"
T0=$SECONDS

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  trap '' PIPE  # a closed stderr must not stop the clean-up half way
  set +e
  # Stop Kannel first, so nothing below can leave it running.
  local stopped=1
  if [ -d "$RUN" ]; then
    "$HERE/down.sh" "$RUN" 2>"$LOGS/down.err" || stopped=0
    compgen -G "$RUN/*.pid" >/dev/null && stopped=0
  fi
  if [ "$rc" -ne 0 ]; then
    say "failed (exit $rc); last lines of the logs:"
    local f
    for f in "$RUN"/bearerbox.out "$RUN"/bearerbox.log "$RUN"/smsbox.out \
             "$RUN"/smsbox.log "$RUN"/smsbox-access.log "$RUN"/fakesmsc.out \
             "$RUN"/fakesmsc.log "$LOGS"/*; do
      if [ -s "$f" ]; then
        echo "----- $f" >&2
        tail -n 20 "$f" >&2
      fi
    done
  fi
  if [ "$stopped" = 0 ]; then
    cat "$LOGS/down.err" >&2
    say "FAIL: down.sh could not stop every Kannel process of $RUN:" \
      "$(cd "$RUN" && grep -H . ./*.pid | paste -sd ' ')"
    [ "$rc" -ne 0 ] || rc=1
  fi
  rm -rf "$WORK"
  [ "$rc" -ne 0 ] || say "PASS in $((SECONDS - T0))s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# fail WHAT EXPECTED GOT: report a failed check and exit 1
indent() { sed 's/^/    /'; }
fail() {
  say "FAIL: $1"
  { echo "  expected:"; indent <<<"$2"; echo "  got:"; indent <<<"$3"; } >&2
  exit 1
}

# yz NAME ARGS...: runs yizhan -d DATA ARGS (within 60 s), stdout in
# LOGS/NAME.out, stderr in LOGS/NAME.err, exit status in YZ_RC
yz() {
  local name="$1"; shift
  YZ_RC=0
  timeout 60 "$YIZHAN" -d "$DATA" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" || YZ_RC=$?
}

# yz_ok NAME ARGS...: as yz, and the command must exit 0
yz_ok() {
  yz "$@"
  [ "$YZ_RC" -eq 0 ] ||
    fail "'yizhan ${*:2}' exits 0" "exit 0" "exit $YZ_RC; stderr: $(cat "$LOGS/$1.err")"
}

# ---------------------------------------------------------------- Kannel
"$HERE/up.sh" "$RUN" >"$LOGS/up.out" 2>"$LOGS/up.err" ||
  fail "tests/kannel/up.sh starts Kannel" "exit 0" "exit $?; $(cat "$LOGS/up.err")"
# shellcheck source=/dev/null
. "$RUN/env.sh"
for v in KANNEL_SENDSMS_URL KANNEL_USER KANNEL_PASS; do
  [ -n "${!v:-}" ] || fail "up.sh's env.sh sets $v" "$v=..." "nothing"
done
say "Kannel up in $((SECONDS - T0))s at $KANNEL_SENDSMS_URL"

# ---------------------------------------------------------------- data dir
yz_ok init init "$DATA"
cat >>"$DATA/yizhan.conf.lua" <<'EOF'

-- Added by tests/kannel/test_kannel.sh.
quiet_hours = false
channels = {
  sms = { type = "kannel", url = env("KANNEL_SENDSMS_URL"),
          username = env("KANNEL_USER"), password = env("KANNEL_PASS") },
}
EOF
yz_ok check check

# ---------------------------------------------------------------- sends
TEXT1='本月请给父母写一封信'
TEXT2='Hello from yizhan'
TEXT3='各位家长：本学期期中家长会定于十一月九日（周一）下午两点在学校礼堂召开，请务必准时参加。会上将介绍孩子在校的学习与生活情况，并请临时监护人一同到场。如因外出务工无法到会，请提前与班主任联系，约定电话或视频沟通的时间。会后可与各科老师单独交流，请带上孩子的作业本和期末成绩单。谢谢您的理解、支持与配合！'
TEXT4=$'家长会 🎉\n周六9点'
TEXT4_ESCAPED='家长会 🎉\n周六9点'  # as received.py prints it
len3="$(python3 -c 'import sys; print(len(sys.argv[1]))' "$TEXT3")"
[ "$len3" = 150 ] || fail "the test's own long text has 150 characters" 150 "$len3"

yz_ok send1 send --to "138 0000 0002" --text "$TEXT1" --key letter-1
yz_ok send2 send --to "+8613800000001" --text "$TEXT2"
yz_ok send3 send --to 13800000003 --text "$TEXT3"
yz_ok send4 send --to 13800000004 --text "$TEXT4"
yz_ok send5 send --to "138 0000 0002" --text "$TEXT1" --key letter-1

# A bad number is refused at 'send', before anything reaches Kannel (were
# it queued, 'run' below would deliver it and the counts would be 5).
yz badnum send --to 12345 --text x
[ "$YZ_RC" -eq 2 ] ||
  fail "'send --to 12345' is a usage error" "exit 2" "exit $YZ_RC; stdout: $(cat "$LOGS/badnum.out")"
grep -q "bad phone number" "$LOGS/badnum.err" ||
  fail "'send --to 12345' says why on stderr" "a line with 'bad phone number'" "$(cat "$LOGS/badnum.err")"

yz_ok outbox_before outbox --json
n="$(grep -c . "$LOGS/outbox_before.out" || true)"
[ "$n" = 4 ] || fail "4 rows queued (the repeated key letter-1 and the bad number add none)" \
  4 "$n: $(cat "$LOGS/outbox_before.out")"

# ---------------------------------------------------------------- deliver
t_run=$SECONDS
yz_ok run run --until-idle
say "run --until-idle took $((SECONDS - t_run))s"

# ---------------------------------------------------------------- received
if ! python3 "$HERE/received.py" "$RUN" --wait 4 --timeout 20 >"$LOGS/received.out" 2>"$LOGS/received.err"; then
  fail "4 messages reach the fake SMSC within 20 s" "4 messages" \
    "$(cat "$LOGS/received.out" "$LOGS/received.err")"
fi
sleep 1  # anything extra (a duplicate, a stray part) would arrive by now
python3 "$HERE/received.py" "$RUN" >"$LOGS/received.out" 2>"$LOGS/received.err"
[ ! -s "$LOGS/received.err" ] ||
  fail "no incomplete message at the fake SMSC" "nothing on received.py's stderr" "$(cat "$LOGS/received.err")"

# received.py writes TO<TAB>TEXT, with LF as the two characters \n.
expected="$(printf '%s\t%s\n' \
  +8613800000002 "$TEXT1" \
  +8613800000001 "$TEXT2" \
  +8613800000003 "$TEXT3" \
  +8613800000004 "$TEXT4_ESCAPED" | LC_ALL=C sort)"
got="$(LC_ALL=C sort "$LOGS/received.out")"
[ "$got" = "$expected" ] ||
  fail "exactly the 4 messages reach the fake SMSC, numbers as +86..., texts byte-identical" \
    "$expected" "$got"

# Codings and parts on the wire (fakesmsc.log, one line per SMS part):
# plain ASCII as text (coding 0), Chinese and emoji as UCS-2 (coding 2),
# the 150-character text as 3 concatenated parts with a UDH.
wire() { grep -o "Got message [0-9]*: <[^ ]* +86138000000$1 [a-z0-9-]*" "$RUN/fakesmsc.log" | awk '{print $NF}' | paste -sd ' ' || true; }
for want in "01 text" "02 ucs-2" "03 udh udh udh" "04 ucs-2"; do
  num="${want%% *}"
  got="$(wire "$num")"
  [ "$got" = "${want#* }" ] ||
    fail "the SMS parts to +86138000000$num go with the right coding" "${want#* }" "${got:-nothing}"
done
grep -o 'Got message [0-9]*: <[^ ]* +8613800000003 udh [^ ]*' "$RUN/fakesmsc.log" | awk '{print $NF}' >"$LOGS/udh"
got="$(LC_ALL=C sort "$LOGS/udh" | sed 's/^%05%00%03%[0-9A-F][0-9A-F]//' | paste -sd ' ')"
[ "$got" = "%03%01 %03%02 %03%03" ] ||
  fail "the long text goes as parts 1, 2 and 3 of 3 of one concatenated SMS" \
    "%03%01 %03%02 %03%03 (after %05%00%03%REF)" "$(cat "$LOGS/udh")"

# ---------------------------------------------------------------- outbox
yz_ok outbox outbox --json
if ! python3 - "$LOGS/outbox.out" >"$LOGS/outbox.check" 2>&1 <<'EOF'; then
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
want = {"0001": 1, "0002": 1, "0003": 3, "0004": 1}
problems = []
if len(rows) != 4:
    problems.append(f"{len(rows)} rows instead of 4")
for r in rows:
    tail = str(r.get("to", ""))[-4:]
    if r.get("state") != "sent":
        problems.append(f"message {r.get('id')} to ...{tail} is '{r.get('state')}', not 'sent' (error: {r.get('error')})")
    if r.get("channel") != "sms":
        problems.append(f"message {r.get('id')} went by channel '{r.get('channel')}', not 'sms'")
    if tail in want and r.get("parts") != want[tail]:
        problems.append(f"message {r.get('id')} to ...{tail} counts {r.get('parts')} SMS parts, not {want[tail]}")
    if r.get("attempts") != 1:
        problems.append(f"message {r.get('id')} to ...{tail} took {r.get('attempts')} attempts, not 1")
if sorted(str(r.get("to", ""))[-4:] for r in rows) != sorted(want):
    problems.append("recipients ending " + ", ".join(sorted(str(r.get("to", ""))[-4:] for r in rows)))
if [r.get("key") for r in rows].count("letter-1") != 1:
    problems.append("not exactly one row with key letter-1")
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
  fail "the outbox holds exactly 4 rows, all 'sent' on channel sms once, with 1, 1, 3, 1 parts and one key letter-1" \
    "4 rows: ...0001 1 part, ...0002 1 part (key letter-1), ...0003 3 parts, ...0004 1 part, all sent" \
    "$(cat "$LOGS/outbox.check" "$LOGS/outbox.out")"
fi

say "all checks passed (Kannel run dir $RUN)"
