#!/usr/bin/env bash
# bench_import.sh: `yizhan registry import` of a generated registry of N
# children (one row each with the contact card: father, mother, guardian),
# against the floor measured in the same run on the same file: the sqlite3
# shell's `.import --csv` into a bare table (no checks, no indexes, one
# table), in WAL mode with synchronous=NORMAL as yizhan's database.
#
#   1. tests/bench/gen_registry.py writes schools, people and children CSVs
#      (about 330 children a school, siblings sharing their parents);
#   2. schools and people are imported (not timed);
#   3. the children: wall time and peak RSS (/usr/bin/time -v) of the
#      import into an empty registry, and of a second import of the same
#      file (every row unchanged);
#   4. the peer: sqlite3 .import of the same file.
# Prints both times and the ratio. The machines are shared: the load
# averages at the start and the end are printed.
#
# Usage: tests/bench/bench_import.sh [YIZHAN] [N]   (default build/yizhan 1000000)
# REGISTRY_DATA=DIR reuses (or keeps) the generated files in DIR.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
y=${1:-$src/build/yizhan}
n=${2:-1000000}
export YIZHAN_SHIPPED_PLUGINS=$src/plugins
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
data=${REGISTRY_DATA:-$scratch/data}

echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ ! -s "$data/children.csv" ] || [ "$(($(wc -l < "$data/children.csv") - 1))" -ne "$n" ]; then
  echo "generating $n children in $data ..."
  python3 "$src/tests/bench/gen_registry.py" --children "$n" --out "$data"
fi
echo "children.csv: $(($(stat -c %s "$data/children.csv") / 1048576)) MiB, $n rows"

d=$scratch/county
mkdir -p "$d/plugins"
echo 'plugins = { registry = {} }' > "$d/yizhan.conf.lua"
"$y" -d "$d" registry import "$data/schools.csv" --kind schools
"$y" -d "$d" registry import "$data/people.csv" --kind people

# timed RUN...: runs a command under /usr/bin/time; sets $secs and $rss_mb.
timed() {
  /usr/bin/time -v -o "$scratch/time" "$@"
  secs=$(awk -F': ' '/Elapsed/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$scratch/time")
  rss_mb=$(awk -F': ' '/Maximum resident/ { printf "%.0f", $2 / 1024 }' "$scratch/time")
}

timed "$y" -d "$d" registry import "$data/children.csv"
y_secs=$secs y_rss=$rss_mb
timed "$y" -d "$d" registry import "$data/children.csv"
y2_secs=$secs y2_rss=$rss_mb

rm -f "$scratch/peer.db"
timed sqlite3 "$scratch/peer.db" 'PRAGMA journal_mode=WAL;' 'PRAGMA synchronous=NORMAL;' \
  ".import --csv $data/children.csv children" >/dev/null
p_secs=$secs p_rss=$rss_mb
p_rows=$(sqlite3 "$scratch/peer.db" 'SELECT count(*) FROM children')

echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %8s s  %6s MiB\n' "yizhan registry import (empty registry)" "$y_secs" "$y_rss"
printf '%-44s %8s s  %6s MiB\n' "yizhan registry import (again, unchanged)" "$y2_secs" "$y2_rss"
printf '%-44s %8s s  %6s MiB  (%s rows)\n' "sqlite3 .import --csv (bare table, the floor)" "$p_secs" "$p_rss" "$p_rows"
awk -v a="$y_secs" -v b="$y2_secs" -v p="$p_secs" \
  'BEGIN { printf "ratio to the floor: %.1fx (first import), %.1fx (re-import)\n", a / p, b / p }'
