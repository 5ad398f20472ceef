#!/usr/bin/env bash
# bench_letters.sh: the monthly letter run over a county of N children
# (default 1,000,000), measured with a peer in the same run.
#
#   1. tests/bench/gen_registry.py writes the county (schools, teachers and
#      volunteers, children with their contact cards, pairings); yizhan
#      imports it (timed for the record; the import has its own benchmark).
#   2. The peer: the rows of the same two runs (the same joins, the texts
#      built in SQL) inserted by one sqlite3 process with one INSERT ...
#      SELECT per run into a bare table (id, unique key, recipient, text) in
#      a database of its own, WAL and synchronous=NORMAL as yizhan's. No
#      plugin, no sandbox, no per-message checks (number, SMS parts,
#      idempotency, the channel's rules).
#   3. The month's two letter runs of letter_reminder, as its jobs run them
#      on the 1st and the 20th, called through 'yizhan eval' with no letter
#      or call logged: one digest per proxy parent or class teacher, and one
#      SMS to the guardian of every active child. Timed until every message
#      is queued (committed in yz_outbox), with the process's peak RSS from
#      /usr/bin/time -v.
#
# Prints: time to enqueue, messages queued, peak RSS, the peer's time and
# the ratio. Target: the letter run under 10 s for 1,000,000 children.
# The machines are shared: the load averages are printed with the figures.
#
# Usage: tests/bench/bench_letters.sh [YIZHAN] [N]     (default build/yizhan 1000000)
#   BENCH_KEEP=DIR keeps the generated CSV files in DIR and reuses them when
#   they are there for the same N (generating a million rows takes a while).
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
y=${1:-$src/build/yizhan}
n=${2:-1000000}
y=$(cd "$(dirname "$y")" && pwd)/$(basename "$y")
export YIZHAN_SHIPPED_PLUGINS=${YIZHAN_SHIPPED_PLUGINS:-$src/plugins}
[ -x /usr/bin/time ] || { echo "bench_letters: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "bench_letters: needs sqlite3" >&2; exit 1; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
csvdir=${BENCH_KEEP:-$scratch/csv}
data=$scratch/county
month=2026-10

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rss_mb() { awk '/Maximum resident set size/ { printf "%.0f", $NF / 1024 }' "$1"; }

echo "bench_letters: $n children, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. The county.
if [ -f "$csvdir/children.csv" ] && [ "$(cat "$csvdir/.children" 2>/dev/null)" = "$n" ]; then
  echo "registry: reusing $csvdir"
else
  t0=$(now)
  python3 "$src/tests/bench/gen_registry.py" --children "$n" --out "$csvdir"
  echo "$n" >"$csvdir/.children"
  echo "registry: generated in $(secs "$t0" "$(now)") s ($(du -sh "$csvdir" | cut -f1))"
fi

"$y" init "$data" >/dev/null
cat >"$data/yizhan.conf.lua" <<'EOF'
timezone = "Asia/Shanghai"
calendar = {
  terms = {
    { name = "2026秋", start = "2026-09-01", mid = "2026-11-09", ["end"] = "2027-01-22" },
    { name = "2027春", start = "2027-02-22", mid = "2027-04-19", ["end"] = "2027-07-02" },
  },
}
-- A registry command of a million rows runs its SQL past the default CPU
-- budget (a billion VM instructions); the letter runs keep the default.
plugin_limits = { registry = { memory_mb = 256, instructions = 100000000000 } }
channels = {
  default = "county",
  county = { type = "file", path = "outbox.jsonl" },
}
plugins = { registry = {}, letter_reminder = {} }
EOF

# load KIND FILE: one registry import, its messages shown if it fails.
load() {
  "$y" -d "$data" registry import --kind "$1" "$2" >"$scratch/import.out" 2>&1 \
    || { cat "$scratch/import.out" >&2; exit 1; }
}
t0=$(now)
load schools "$csvdir/schools.csv"
load people "$csvdir/people.csv"
load children "$csvdir/children.csv"
load pairings "$csvdir/pairings.csv"
db=$data/yizhan.db
active=$(sqlite3 "$db" "SELECT count(*) FROM children WHERE status = 'active'")
echo "import: $(secs "$t0" "$(now)") s (schools, people, children, pairings); $active active children"
# Both contenders start with the database in the page cache.
cat "$db" >/dev/null

# 2. The peer, first, so both read the same registry with nothing queued:
# the two queries' rows into a bare table by one process, the texts built
# as the plugin builds them (names masked, ten names a digest).
mask="CASE length(c.name) WHEN 1 THEN c.name WHEN 2 THEN substr(c.name, 1, 1) || '*'
      ELSE substr(c.name, 1, 1) || substr('**********', 1, length(c.name) - 2) || substr(c.name, -1) END"
parent="CASE c.away WHEN 'father' THEN '爸爸' WHEN 'mother' THEN '妈妈' ELSE '爸爸妈妈' END"
no_letter="NOT EXISTS (SELECT 1 FROM contact_log l WHERE l.child_id = c.id
             AND l.kind IN ('letter', 'call') AND l.on_date >= '$month-01'
             AND l.on_date < date('$month-01', '+1 month'))"
t0=$(now)
sqlite3 "$db" <<EOF >/dev/null
ATTACH '$scratch/peer.db' AS p;
PRAGMA p.journal_mode = WAL;
PRAGMA p.synchronous = NORMAL;
CREATE TABLE p.msg (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
                    recipient TEXT NOT NULL, text TEXT NOT NULL);
BEGIN;
INSERT INTO p.msg (key, recipient, text)
SELECT 'letter:teacher:' || t.id || ':$month', t.phone,
       t.name || '老师：本月尚有' || m.n || '名留守儿童未给父母写信或打电话：' || m.names
       || CASE WHEN m.n > 10 THEN '等' || m.n || '人' ELSE '' END || '。请督促孩子与父母联系。'
FROM (SELECT teacher, max(n) AS n, group_concat(name, '、') AS names
      FROM (SELECT teacher, name, count(*) OVER w AS n,
                   row_number() OVER (w ORDER BY class, name, id) AS rn
            FROM (SELECT c.id, c.class, coalesce(p.person_id, ct.id) AS teacher, $mask AS name
                  FROM children c
                  LEFT JOIN pairings p ON p.child_id = c.id AND p."until" IS NULL
                       AND p.since <= '$month-01'
                  LEFT JOIN people ct ON p.person_id IS NULL AND ct.kind = 'teacher'
                       AND ct.school_id = c.school_id AND ct.class = c.class
                  WHERE c.status = 'active' AND $no_letter)
            WINDOW w AS (PARTITION BY teacher))
      WHERE teacher IS NOT NULL AND rn <= 10 GROUP BY teacher) m
JOIN people t ON t.id = m.teacher
WHERE t.phone IS NOT NULL;
INSERT INTO p.msg (key, recipient, text)
SELECT 'letter:guardian:' || c.id || ':$month', p.phone,
       p.name || '您好：' || $mask || '本月还没有给在外务工的' || $parent || '写信或打电话，请督促孩子和'
       || $parent || '联系。'
FROM children c
JOIN guardianships g ON g.child_id = c.id AND g.is_primary = 1
JOIN people p ON p.id = g.person_id
WHERE c.status = 'active' AND p.phone IS NOT NULL AND $no_letter;
COMMIT;
EOF
t_peer=$(secs "$t0" "$(now)")
peer_rows=$(sqlite3 "$scratch/peer.db" "SELECT count(*) FROM msg")

# 3. The month's letter runs, until every message is queued.
t0=$(now)
/usr/bin/time -v -o "$scratch/time.txt" "$y" -d "$data" eval letter_reminder \
  "local t = remind_teachers('$month'); local g = remind_guardians('$month');
   return t.teachers .. ' teacher digests (' .. t.children .. ' children), '
       .. g.guardians .. ' guardians, ' .. (t.no_phone + g.no_phone) .. ' without a phone'" \
  >"$scratch/eval.out" 2>"$scratch/eval.err" || { cat "$scratch/eval.err" >&2; exit 1; }
t_run=$(secs "$t0" "$(now)")
queued=$(sqlite3 "$db" "SELECT count(*) FROM yz_outbox WHERE state = 'queued'")
rss=$(rss_mb "$scratch/time.txt")
echo "letter run: $(tr -d '"' <"$scratch/eval.out")"

echo
printf '%-44s %10s\n' "monthly letter run, $n children:" ""
printf '  %-42s %8s s\n' "time to enqueue (yizhan eval)" "$t_run"
printf '  %-42s %8s\n' "messages queued" "$queued"
printf '  %-42s %8s/s\n' "rate" "$(awk -v q="$queued" -v t="$t_run" 'BEGIN { printf "%.0f", q / t }')"
printf '  %-42s %8s MB\n' "peak RSS" "$rss"
printf '  %-42s %8s s (%s rows)\n' "peer: sqlite3 INSERT ... SELECT, bare table" "$t_peer" "$peer_rows"
printf '  %-42s %8s\n' "ratio yizhan / peer" "$(awk -v a="$t_run" -v b="$t_peer" 'BEGIN { printf "%.1fx", a / b }')"
printf '  %-42s %8s\n' "target" "< 10 s"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$queued" -ne "$peer_rows" ]; then
  echo "bench_letters: yizhan queued $queued messages, the peer $peer_rows rows" >&2
  exit 1
fi
