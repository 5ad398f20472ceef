#!/usr/bin/env bash
# Start a loopback-only Kannel (bearerbox + smsbox) with Kannel's fake SMS
# centre (fakesmsc) in the background, for tests.
#
#   tests/kannel/up.sh RUN_DIR
#
# RUN_DIR is an existing directory owned by the caller (empty, or at least
# not used by an earlier up.sh). up.sh writes into it:
#   kannel.conf                      the generated configuration
#   bearerbox.pid smsbox.pid fakesmsc.pid
#   bearerbox.log smsbox.log *-access.log *.out   logs
#   fakesmsc.log                     every message that reached the fake SMSC
#                                    (read it with tests/kannel/received.py)
#   env.sh                           KANNEL_* variables, also printed on stdout
# It waits (KANNEL_START_TIMEOUT, default 30 s) until the sendsms port answers
# and bearerbox's status shows the fake SMSC online. On failure it prints the
# tail of the logs, stops what it started and exits 1.
# Stop it with tests/kannel/down.sh RUN_DIR.
#
# Every socket is bound to 127.0.0.1 and every allow list is 127.0.0.1 only.
# Optional environment: KANNEL_USER (tester), KANNEL_PASS (foobar),
# KANNEL_ADMIN_PASS (admin), KANNEL_SENDER (10086), KANNEL_MAX_MESSAGES (10),
# KANNEL_START_TIMEOUT (30).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BEARERBOX=/usr/sbin/bearerbox
SMSBOX=/usr/sbin/smsbox
FAKESMSC=/usr/lib/kannel/test/fakesmsc

say() { echo "up.sh: $*" >&2; }
fail() { say "error: $*"; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 RUN_DIR" >&2; exit 2; }
[ -d "$1" ] || fail "run dir '$1' does not exist"
RUN_DIR="$(cd "$1" && pwd -P)"
for f in kannel.conf bearerbox.pid smsbox.pid fakesmsc.pid; do
  [ ! -e "$RUN_DIR/$f" ] || fail "$RUN_DIR already holds $f: use a fresh directory (or down.sh it first)"
done
case "$RUN_DIR" in *[[:space:]\"]*) fail "run dir must not contain spaces or quotes: $RUN_DIR";; esac

for b in "$BEARERBOX" "$SMSBOX" "$FAKESMSC"; do
  [ -x "$b" ] || fail "$b is missing: run scripts/setup.sh (packages kannel kannel-extras)"
done
command -v python3 >/dev/null || fail "python3 is missing: run scripts/setup.sh"

USER_NAME="${KANNEL_USER:-tester}"
USER_PASS="${KANNEL_PASS:-foobar}"
ADMIN_PASS="${KANNEL_ADMIN_PASS:-admin}"
SENDER="${KANNEL_SENDER:-10086}"
MAX_MESSAGES="${KANNEL_MAX_MESSAGES:-10}"
TIMEOUT="${KANNEL_START_TIMEOUT:-30}"
for v in "$USER_NAME" "$USER_PASS" "$ADMIN_PASS" "$SENDER"; do
  [[ "$v" =~ ^[A-Za-z0-9._-]+$ ]] || fail "user, passwords and sender must match [A-Za-z0-9._-]+ (got '$v')"
done

# Four free loopback ports, picked by the kernel.
read -r ADMIN_PORT BOX_PORT FAKE_PORT SENDSMS_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')
[ -n "${SENDSMS_PORT:-}" ] || fail "could not pick free ports"

cat >"$RUN_DIR/kannel.conf" <<EOF
# Written by tests/kannel/up.sh: loopback only.
group = core
admin-port = $ADMIN_PORT
admin-interface = 127.0.0.1
admin-password = $ADMIN_PASS
status-password = $ADMIN_PASS
admin-allow-ip = 127.0.0.1
admin-deny-ip = "*.*.*.*"
smsbox-port = $BOX_PORT
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
box-deny-ip = "*.*.*.*"
log-file = "$RUN_DIR/bearerbox.log"
log-level = 1
access-log = "$RUN_DIR/bearerbox-access.log"
dlr-storage = internal

# bearerbox listens here; fakesmsc connects and receives every MT message.
group = smsc
smsc = fake
smsc-id = fake
port = $FAKE_PORT
our-host = 127.0.0.1
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = $BOX_PORT
sendsms-port = $SENDSMS_PORT
sendsms-interface = 127.0.0.1
global-sender = $SENDER
log-file = "$RUN_DIR/smsbox.log"
log-level = 1
access-log = "$RUN_DIR/smsbox-access.log"

group = sendsms-user
username = $USER_NAME
password = $USER_PASS
user-allow-ip = 127.0.0.1
user-deny-ip = "*.*.*.*"
max-messages = $MAX_MESSAGES
concatenation = true
EOF

STARTED=0
on_exit() {
  [ "$STARTED" = ready ] && return
  say "start-up failed; last lines of the logs in $RUN_DIR:"
  for f in bearerbox.out bearerbox.log fakesmsc.out fakesmsc.log smsbox.out smsbox.log; do
    if [ -s "$RUN_DIR/$f" ]; then
      echo "----- $f" >&2
      tail -n 20 "$RUN_DIR/$f" >&2
    fi
  done
  "$HERE/down.sh" "$RUN_DIR" >&2 || true
}
trap on_exit EXIT

# launch NAME PROGRAM ARGS...: in the background, pid in RUN_DIR/NAME.pid
launch() {
  local name="$1"; shift
  "$@" </dev/null >"$RUN_DIR/$name.out" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
  say "$name started (pid $!)"
}

# alive PID: running and not a zombie
alive() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" && [ -n "$state" ] && [ "$state" != Z ]
}

# wait_until WHAT COMMAND...: poll until COMMAND succeeds, within TIMEOUT
DEADLINE=$((SECONDS + TIMEOUT))
wait_until() {
  local what="$1"; shift
  until "$@"; do
    for p in "$RUN_DIR"/*.pid; do
      alive "$(cat "$p")" || fail "$(basename "$p" .pid) exited while waiting for $what"
    done
    [ "$SECONDS" -lt "$DEADLINE" ] || fail "timed out after ${TIMEOUT}s waiting for $what"
    sleep 0.1
  done
}

# http_get URL: body on stdout, exit 0 on any HTTP answer
http_get() {
  python3 - "$1" <<'EOF'
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.stdout.write(r.read().decode("utf-8", "replace"))
except urllib.error.HTTPError as e:
    sys.stdout.write(e.read().decode("utf-8", "replace"))
except Exception:
    sys.exit(1)
EOF
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
sendsms_answers() { [ "$(http_get "http://127.0.0.1:$SENDSMS_PORT/")" = "Unknown request." ]; }
STATUS_URL="http://127.0.0.1:$ADMIN_PORT/status.txt?password=$ADMIN_PASS"
fake_online() {
  local s
  s="$(http_get "$STATUS_URL")" && grep -q "smsbox:.*on-line" <<<"$s" && grep -q "fake\[fake\].*(online" <<<"$s"
}

launch bearerbox "$BEARERBOX" -v 2 "$RUN_DIR/kannel.conf"
wait_until "bearerbox's fake SMSC port $FAKE_PORT" port_open "$FAKE_PORT"

# -m 0: send no MO messages (the MO template argument is still required);
# each MT line received is logged at debug level into fakesmsc.log.
launch fakesmsc "$FAKESMSC" -H 127.0.0.1 -r "$FAKE_PORT" -m 0 -i 0 \
  -v 4 -F "$RUN_DIR/fakesmsc.log" -V 0 "0 0 text unused"
launch smsbox "$SMSBOX" -v 2 "$RUN_DIR/kannel.conf"

wait_until "sendsms on 127.0.0.1:$SENDSMS_PORT" sendsms_answers
wait_until "the fake SMSC online in $STATUS_URL" fake_online

# Every listening socket of ours must be on 127.0.0.1.
if command -v ss >/dev/null; then
  pids="$(cat "$RUN_DIR"/*.pid | paste -sd '|')"
  wide="$(ss -ltnpH 2>/dev/null | grep -E "pid=($pids)," | awk '$4 !~ /^127\.0\.0\.1:/ {print $4}' || true)"
  [ -z "$wide" ] || fail "listening beyond loopback: $wide"
fi

cat >"$RUN_DIR/env.sh" <<EOF
KANNEL_RUN_DIR=$RUN_DIR
KANNEL_SENDSMS_URL=http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms
KANNEL_USER=$USER_NAME
KANNEL_PASS=$USER_PASS
KANNEL_SENDER=$SENDER
KANNEL_STATUS_URL=$STATUS_URL
export KANNEL_RUN_DIR KANNEL_SENDSMS_URL KANNEL_USER KANNEL_PASS KANNEL_SENDER KANNEL_STATUS_URL
EOF
STARTED=ready
say "ready"
cat "$RUN_DIR/env.sh"
