#!/usr/bin/env bash
# bench_providers.sh: what batching and signing cost on the provider
# channels, measured in one run against the mock providers on loopback.
#
#   N template messages (one template, one set of parameters, N guardians)
#   queued with 'yizhan eval' and delivered by 'yizhan run --until-idle'
#   (which also asks for each message's receipt once before it ends):
#     aliyun, batched (up to 100 numbers per request)
#     aliyun, one number per request (batch = 1)
#     tencent, batched
#   vs the generic http channel against mockgw.py (one unsigned request per
#      message, the same Python server framework): the peer
#
# The mocks are Python and single-process: they are the bottleneck, so the
# figures compare request counts and per-request costs, not what Aliyun's
# or Tencent's servers would take. The machines are shared and noisy:
# compare the ratios.
#
# Usage: tests/bench/bench_providers.sh [YIZHAN] [N]   (default build/yizhan 2000)
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
y=${1:-$src/build/yizhan}
n=${2:-2000}
export YIZHAN_SHIPPED_PLUGINS=$src/plugins
scratch=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

# start_mock NAME SCRIPT ARGS...: starts a mock; its port is in $port
# (not printed: a command substitution would lose the pid kept for cleanup).
start_mock() {
  local name=$1 script=$2
  shift 2
  mkdir -p "$scratch/$name"
  python3 "$src/tests/gateway/$script" --port 0 --port-file "$scratch/$name/port" \
    --pid-file "$scratch/$name/pid" --log "$scratch/$name/log.jsonl" "$@" \
    >"$scratch/$name/out" 2>&1 &
  for _ in $(seq 100); do [ -s "$scratch/$name/port" ] && break; sleep 0.05; done
  pids+=("$(cat "$scratch/$name/pid")")
  port=$(cat "$scratch/$name/port")
}

start_mock aliyun mock_aliyun.py --template SMS_1=child,month
ali=$port
start_mock tencent mock_tencent.py --template 1234567=2 --replay-check SendSms
tc=$port
start_mock http mockgw.py
gw=$port

# The requests a mock has answered, by action (JSON).
actions() {
  python3 -c 'import json,sys,urllib.request as u
st = json.load(u.urlopen("http://127.0.0.1:%s/stats" % sys.argv[1]))
print(json.dumps(st.get("actions") or {"send": st.get("total", 0)}))' "$1"
}

# round NAME PORT CHANNEL_CONFIG: queues N messages and delivers them;
# prints "NAME seconds"; the requests the mock at PORT saw go to a list.
round() {
  local name=$1 port=$2 chan=$3 d=$scratch/d-$1
  local before
  before=$(actions "$port")
  "$y" init "$d" >/dev/null
  cat >"$d/yizhan.conf.lua" <<EOF
quiet_hours = false
templates = { letter = "{{child}}同学{{month}}月还没有给父母写信或打电话，请提醒。" }
channels = { bench = $chan }
plugin_path = { "$d/bulk" }
plugins = { bulk = {} }
EOF
  mkdir -p "$d/bulk"
  cat >"$d/bulk/bulk.lua" <<'EOF'
return { name = "bulk", version = "1", access = { send = true },
  setup = function() end }
EOF
  ALI_SK=testSecret TC_SK=testKey "$y" -d "$d" eval bulk "
    for i = 1, $n do
      host.send{ to = string.format('139%08d', i), template = 'letter',
                 params = { child = '张*明', month = '10' }, key = 'b' .. i }
    end" >/dev/null
  local t0 t1
  t0=$(date +%s.%N)
  ALI_SK=testSecret TC_SK=testKey "$y" -d "$d" run --until-idle 2>/dev/null
  t1=$(date +%s.%N)
  local done
  done=$(sqlite3 "$d/yizhan.db" "SELECT count(*) FROM yz_outbox WHERE state IN ('sent','delivered')")
  [ "$done" = "$n" ] || { echo "$name: only $done of $n went" >&2; exit 1; }
  python3 -c 'import json,sys
b, a = json.loads(sys.argv[2]), json.loads(sys.argv[3])
print("%s requests: %s" % (sys.argv[1], ", ".join("%s %d" % (k, v - b.get(k, 0))
      for k, v in sorted(a.items()) if v - b.get(k, 0))))' \
    "$name" "$before" "$(actions "$port")" >>"$scratch/requests"
  echo "$name $(awk "BEGIN { print $t1 - $t0 }")"
}

common="tps = 100000, max_in_flight = 1000, daily_cap = false, retry_base = 1"
ali_conf="type = 'aliyun', url = 'http://127.0.0.1:$ali/', access_key_id = 'testId',
  access_key_secret = env('ALI_SK'), sign_name = '某县教育局', templates = { letter = 'SMS_1' }, $common"
tc_conf="type = 'tencent', url = 'http://127.0.0.1:$tc/', secret_id = 'AKIDtest',
  secret_key = env('TC_SK'), sdk_app_id = '1400000001', sign_name = '某县教育局',
  templates = { letter = { code = '1234567', params = { 'child', 'month' } } }, $common"

echo "# $n template messages; load $(cut -d' ' -f1-3 /proc/loadavg)"
peer=$(round http "$gw" "{ type = 'http', url = 'http://127.0.0.1:$gw/send', body = { to = '{{to}}', text = '{{text}}', key = '{{key}}' }, $common }")
a1=$(round aliyun_batched "$ali" "{ $ali_conf, batch = 100 }")
a2=$(round aliyun_single "$ali" "{ $ali_conf, batch = 1 }")
t1=$(round tencent_batched "$tc" "{ $tc_conf, batch = 100 }")
ps=$(echo "$peer" | cut -d' ' -f2)
for r in "$a1" "$a2" "$t1"; do
  name=${r%% *}
  s=${r#* }
  printf "%-16s %7.2f s  %8.0f msgs/s  %5.2fx the http peer's time\n" "$name" "$s" \
    "$(awk "BEGIN { print $n / $s }")" "$(awk "BEGIN { print $s / $ps }")"
done
printf "%-16s %7.2f s  %8.0f msgs/s  (peer: one unsigned request a message, no receipts)\n" \
  http "$ps" "$(awk "BEGIN { print $n / $ps }")"
cat "$scratch/requests"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg)"
