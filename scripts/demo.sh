#!/usr/bin/env bash
# The main job: sets up, builds, and runs the demo county on a fresh data
# directory (build/demo-county) with the embedded SQLite database.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
y=build/yizhan
demo=build/demo-county
rm -rf "$demo"

step() { printf '\n== %s\n' "$*"; }

step "yizhan init $demo"
$y init "$demo"
cp examples/county/yizhan.conf.lua "$demo/"
cp -r examples/county/plugins/. "$demo/plugins/"

step "yizhan plugins"
$y -d "$demo" plugins

step "yizhan check"
$y -d "$demo" check

step "yizhan eval: record notes through the care_notes plugin"
$y -d "$demo" eval care_notes 'add_note("张小明", "和妈妈视频通话，情绪稳定", "mood")'
$y -d "$demo" eval care_notes 'add_note("李小红", "数学作业需要辅导", "study")'
$y -d "$demo" eval care_notes 'add_note("李小红", "奶奶腿脚不便，周末需要家访", "family")'
$y -d "$demo" eval care_notes 'summary()'

step "yizhan test: the plugin's own tests, on a fresh database and a fake clock"
$y -d "$demo" test care_notes

step "yizhan send: a message to a guardian, the number as people write it, with an idempotency key"
$y -d "$demo" send --to "138 0000 0002" --text "小明的家长您好：本周六上午9点在学校召开家长会。" --key demo:meeting:1
step "the same key again: nothing is queued twice"
$y -d "$demo" send --to "138 0000 0002" --text "小明的家长您好：本周六上午9点在学校召开家长会。" --key demo:meeting:1
step "a template message (what Aliyun and Tencent send): its parameters fill the local text"
$y -d "$demo" send --to "13800000003" --template meeting --params "child=李小红,date=本周六上午9点" --key demo:meeting:2
step "a bad number is refused, shown masked"
$y -d "$demo" send --to "12345678" --text "x" || echo "(refused, as it should be)"

step "yizhan run --until-idle: deliver what may go now (quiet hours, 21:30-07:30 in Shanghai, hold the rest)"
$y -d "$demo" run --until-idle
step "yizhan outbox and outbox stats"
$y -d "$demo" outbox
$y -d "$demo" outbox stats
if [ -f "$demo/outbox.jsonl" ]; then
  step "what the file channel wrote (outbox.jsonl)"
  cat "$demo/outbox.jsonl"
fi

step "yizhan spec: when '3 days before term.end 09:00' fires this school year"
$y -d "$demo" spec '3 days before term.end 09:00' --from '2026-09-01 00:00' --count 2

step "yizhan simulate: the school year on a copy of the data, with every message that would go"
$y -d "$demo" simulate --from 2026-09-01 --to 2027-07-10 | grep -v 'care notes ready'

step "yizhan jobs"
$y -d "$demo" jobs

step "yizhan eval: the sandbox refuses what a policy must not do"
$y -d "$demo" eval care_notes 'io.open("/etc/passwd")' || echo "(refused, as it should be)"

step "yizhan run: the daemon starts, reloads on SIGHUP, stops on SIGTERM"
$y -d "$demo" run 2>"$demo/run.log" &
pid=$!
for _ in $(seq 100); do grep -q 'msg=ready' "$demo/run.log" 2>/dev/null && break; sleep 0.05; done
kill -HUP "$pid"
for _ in $(seq 100); do grep -q 'reloaded' "$demo/run.log" && break; sleep 0.05; done

step "yizhan backup while the daemon runs"
$y -d "$demo" backup "$demo/backup.db"

kill -TERM "$pid"
wait "$pid"
cat "$demo/run.log"

step "done: the demo county is in $demo"
