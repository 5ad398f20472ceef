#!/usr/bin/env bash
# The main job: sets up, builds, and runs the demo county end to end on a
# fresh data directory (build/demo-county) with the embedded SQLite
# database: the county's registry imported from examples/county/registry/
# (UTF-8 and GBK files), the record commands, the example plugin, messages,
# the autumn term simulated with the shipped policies, delivery, the county
# report (text and HTML), the daemon and a backup. The walkthrough in
# examples/county/README.md says what each step does.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
y=build/yizhan
demo=build/demo-county
reg=examples/county/registry
rm -rf "$demo"
started=$(date +%s)

step() { printf '\n== %s\n' "$*"; }

# job_of: the key of a SEND line of a simulate timeline in awk, its plugin
# and job, and the template it sends when it sends one.
# shellcheck disable=SC2016 # awk code, not shell
job_of='
  function job_of(line,   k) {
    k = $3 "/" (match(line, /job [^,)]+/) ? substr(line, RSTART + 4, RLENGTH - 4) : "-")
    if (match(line, /template [^,)]+/)) k = k " [" substr(line, RSTART + 9, RLENGTH - 9) "]"
    return k
  }'

# per_job TIMELINE: the messages of a simulate timeline counted per plugin,
# job and template, with SMS parts and the first message of each.
per_job() {
  awk "$job_of"'
    / SEND / {
      k = job_of($0)
      parts = match($0, /\([0-9]+ part/) ? substr($0, RSTART + 1, RLENGTH - 6) + 0 : 1
      if (!(k in n)) { order[++kinds] = k; first[k] = substr($1, 1, 10) "  " substr($0, index($0, "): ") + 3) }
      n[k]++; p[k] += parts
    }
    END {
      for (i = 1; i <= kinds; i++)
        printf "  %-46s %5d messages %5d parts\n      %s\n", order[i], n[order[i]], p[order[i]], first[order[i]]
    }' "$1"
}

step "yizhan init $demo"
$y init "$demo"
cp examples/county/yizhan.conf.lua "$demo/"
cp -r examples/county/plugins/. "$demo/plugins/"

step "yizhan plugins: the registry, the shipped policies and the example plugin"
$y -d "$demo" plugins

step "yizhan check"
$y -d "$demo" check

step "the registry: schools with their enrolment, then teachers (class teachers, heads, deputies) and volunteers"
$y -d "$demo" registry import --kind schools "$reg/schools.csv"
$y -d "$demo" registry import --kind people "$reg/people.csv"

step "four schools' children in UTF-8, then the fifth school's file, saved by Excel in GBK (detected)"
$y -d "$demo" registry import "$reg/children.csv"
$y -d "$demo" registry import "$reg/children-gbk.csv"

step "proxy parents: teachers and volunteers paired with children"
$y -d "$demo" registry import --kind pairings "$reg/pairings.csv"

step "a file with one mistyped phone number: every bad row reported, nothing imported"
sed '5s/,1390000\([0-9]\)/,139000\1/' "$reg/children.csv" >"$demo/children-typo.csv"
$y -d "$demo" registry import "$demo/children-typo.csv" || echo "(refused, as it should be)"

step "the same file again, as a school sends it every term: nothing changes, nothing is duplicated"
$y -d "$demo" registry import "$reg/children.csv"

step "yizhan registry find / show: look a child up"
$y -d "$demo" registry find 张小
$y -d "$demo" registry show 张小明

step "yizhan registry log / visit done: what teachers record"
$y -d "$demo" registry log letter 张小明 --notes "给在东莞的爸爸妈妈写了信"
$y -d "$demo" registry log call 李小红
$y -d "$demo" registry log guardian-contact 李小红 --notes "电话联系父亲，孩子近况良好"
$y -d "$demo" registry visit "done" 张小明 --notes "祖父母身体尚可，孩子情绪稳定"
$y -d "$demo" registry show 李小红

step "yizhan eval: record notes through the example plugin (care_notes)"
$y -d "$demo" eval care_notes 'add_note("张小明", "和妈妈视频通话，情绪稳定", "mood")'
$y -d "$demo" eval care_notes 'add_note("李小红", "数学作业需要辅导", "study")'
$y -d "$demo" eval care_notes 'add_note("李小红", "奶奶腿脚不便，周末需要家访", "family")'
$y -d "$demo" eval care_notes 'summary()'

step "yizhan test: the plugin's own tests, on a fresh database and a fake clock"
$y -d "$demo" test care_notes

step "yizhan spec: when '3 days before term.end 09:00' fires this school year"
$y -d "$demo" spec '3 days before term.end 09:00' --from '2026-09-01 00:00' --count 2

step "yizhan simulate: the autumn term on a copy of the data, every policy, every message that would go"
$y -d "$demo" simulate --from 2026-09-01 --to 2027-01-31 >"$demo/simulate.txt"
# The timeline is long (daily runs for visits, monthly digests, a message
# per guardian): its first lines with two messages of each job, then the
# messages counted per plugin, job and template with the first of each.
# The whole timeline is in simulate.txt.
awk -v max=28 "$job_of"'
  printed >= max { exit }
  / SEND / && ++seen[job_of($0)] > 2 { next }
  { print; printed++ }' "$demo/simulate.txt"
echo "    ... ($(wc -l <"$demo/simulate.txt") lines in all: $demo/simulate.txt)"
echo
echo "messages by plugin/job [template] (count, SMS parts), with the first of each:"
per_job "$demo/simulate.txt"
echo "failed runs: $(grep -c 'level=error' "$demo/simulate.txt" || true)"
tail -n 1 "$demo/simulate.txt"

step "yizhan simulate --plugin term_survey: the spring term's survey, the teachers' reminder, the heads' escalation"
# An import that adds or changes a child counts as the term survey's
# confirmation of it: the children imported above are confirmed for the
# current term, so the survey to watch is the next term's.
$y -d "$demo" simulate --from 2027-02-22 --to 2027-03-12 --plugin term_survey >"$demo/simulate-survey.txt"
grep 'level=info' "$demo/simulate-survey.txt" | sed -E 's/^ *ts=([0-9-]+)T[^ ]* level=info plugin=[a-z_]+ /  \1  /'
per_job "$demo/simulate-survey.txt"
tail -n 1 "$demo/simulate-survey.txt"

step "yizhan send: a message to a guardian, the number as people write it, with an idempotency key"
$y -d "$demo" send --to "139 0000 0002" --text "小明的家长您好：本周六上午9点在学校召开家长会。" --key demo:meeting:1
step "the same key again: nothing is queued twice"
$y -d "$demo" send --to "139 0000 0002" --text "小明的家长您好：本周六上午9点在学校召开家长会。" --key demo:meeting:1
step "a template message (what Aliyun and Tencent send): its parameters fill the local text"
$y -d "$demo" send --to "13900000003" --template meeting --params "child=李*红,date=本周六上午9点" --key demo:meeting:2
step "a bad number is refused, shown masked"
$y -d "$demo" send --to "12345678" --text "x" || echo "(refused, as it should be)"

step "yizhan broadcast: an open letter to the guardians of one school (preview, then --yes)"
$y -d "$demo" broadcast --template winter_letter --params "date=1月22日" --to guardians --school 马坪村小学 --yes

step "yizhan run --until-idle: deliver what may go now (quiet hours, 21:30-07:30 in Shanghai, hold the rest)"
$y -d "$demo" run --until-idle
step "yizhan outbox and outbox stats"
$y -d "$demo" outbox --limit 8
$y -d "$demo" outbox stats
if [ -f "$demo/outbox.jsonl" ]; then
  step "what the file channel wrote (outbox.jsonl): the first 3 of $(wc -l <"$demo/outbox.jsonl")"
  head -n 3 "$demo/outbox.jsonl"
fi

step "yizhan report: the county table (counts and shares, this term's coverage)"
$y -d "$demo" report
step "yizhan report --format html: one self-contained page with charts, for a browser or A4"
$y -d "$demo" report --format html -o "$demo/report.html"
ls -l "$demo/report.html"

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

step "done in $(($(date +%s) - started)) s: the demo county is in $demo (report.html, simulate.txt, outbox.jsonl)"
