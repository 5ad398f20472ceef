#!/usr/bin/env bash
# Stop the Kannel processes that tests/kannel/up.sh started in RUN_DIR.
#
#   tests/kannel/down.sh RUN_DIR
#
# Signals exactly the pids in RUN_DIR/*.pid, and a pid only while
# /proc/PID/cmdline still mentions RUN_DIR (so a reused pid is never hit):
# SIGTERM first (smsbox, then bearerbox, then fakesmsc), SIGKILL to whatever
# is still alive 10 s later. Removes the pid files of stopped processes and
# leaves the rest of RUN_DIR (config, logs) to the caller. Never kills by name.
# Exit 0 when none of the pids is left running, 1 otherwise.
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 RUN_DIR" >&2; exit 2; }
[ -d "$1" ] || { echo "down.sh: no run dir '$1'" >&2; exit 0; }
RUN_DIR="$(cd "$1" && pwd -P)"
GRACE=10

# ours PID: alive (not a zombie) and started from this run dir
ours() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != Z ] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$RUN_DIR/"
}

names=()
for name in smsbox bearerbox fakesmsc; do
  [ -f "$RUN_DIR/$name.pid" ] && names+=("$name")
done
for f in "$RUN_DIR"/*.pid; do  # any other pid file placed there by a caller
  [ -f "$f" ] || continue
  n="$(basename "$f" .pid)"
  case " ${names[*]} " in *" $n "*) ;; *) names+=("$n");; esac
done

declare -A pid_of=()
for n in "${names[@]}"; do
  pid="$(tr -d ' \n' <"$RUN_DIR/$n.pid")"
  if ours "$pid"; then
    pid_of[$n]="$pid"
    kill -TERM "$pid" 2>/dev/null && echo "down.sh: SIGTERM $n (pid $pid)" >&2
  else
    rm -f "$RUN_DIR/$n.pid"  # already gone (or the pid is someone else's now)
  fi
done

deadline=$((SECONDS + GRACE))
while :; do
  alive=()
  for n in "${!pid_of[@]}"; do ours "${pid_of[$n]}" && alive+=("$n"); done
  [ ${#alive[@]} -eq 0 ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    for n in "${alive[@]}"; do
      ours "${pid_of[$n]}" && kill -KILL "${pid_of[$n]}" 2>/dev/null &&
        echo "down.sh: SIGKILL $n (pid ${pid_of[$n]}) after ${GRACE}s" >&2
    done
    sleep 0.5
    break
  fi
  sleep 0.1
done

rc=0
for n in "${!pid_of[@]}"; do
  if ours "${pid_of[$n]}"; then
    echo "down.sh: $n (pid ${pid_of[$n]}) is still running" >&2
    rc=1
  else
    rm -f "$RUN_DIR/$n.pid"
  fi
done
exit $rc
