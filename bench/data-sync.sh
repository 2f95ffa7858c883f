#!/usr/bin/env bash
# The figures of docs/operations.md, "data sync: measured": with a plain static HTTP server as
# the origin (python3 -m http.server, which answers If-Modified-Since with 304 and sends no
# ETag), three replicas on this machine, each with its own updater (data sync --interval):
#
#   1. time from publishing a new manifest to every replica serving the new table (each
#      replica asked with `card-lookup lookup --server` every 50 ms);
#   2. the cost of an idle poll (the origin unchanged: a 304), as the updater's CPU time per
#      poll over IDLE seconds;
#   3. peak memory (VmHWM) of a replica and of an updater, before and after the reload.
#
#   bash bench/data-sync.sh                    # 100,000-row table, --interval 2s
#   ROWS=3000000 bash bench/data-sync.sh       # the 3M-entry table of the memory figure
#
# Uses target/release/card-lookup (CARD_LOOKUP_BINARY=PATH for another). Everything listens on
# 127.0.0.1 and is stopped at the end; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

BINARY=${CARD_LOOKUP_BINARY:-target/release/card-lookup}
ROWS=${ROWS:-100000}
INTERVAL=${INTERVAL:-2s}
IDLE=${IDLE:-20}
[ -x "$BINARY" ] || { echo "no $BINARY: cargo build --release --locked" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
# A table of ROWS 8-digit BINs, every row naming BANK.
table() {
  python3 -c "
import sys
rows, bank = int(sys.argv[1]), sys.argv[2]
out = sys.stdout
out.write('BIN,BankName,CardType,CardOrg\n')
for i in range(rows):
    out.write(f'{62000000 + i},{bank},借记卡,银联\n')
" "$ROWS" "$1"
}
publish() {
  table "$1" > "$work/table.csv"
  python3 scripts/publish-bins.py --out "$work/origin" "bins.csv=$work/table.csv" > /dev/null
}
# The first line of FILE matching PATTERN's capture, within 60 s.
wait_line() {
  local file=$1 pattern=$2
  for _ in $(seq 600); do
    if line=$(grep -o -m1 -E "$pattern" "$file" 2>/dev/null); then
      echo "$line"
      return
    fi
    sleep 0.1
  done
  echo "no '$pattern' in $file within 60 s" >&2
  cat "$file" >&2
  exit 1
}
serves() { "$BINARY" lookup --server "http://$1" 6200000112 2>/dev/null | grep -q "issuer:   $2"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
scrape() { python3 -c "import sys, urllib.request; print(urllib.request.urlopen('http://' + sys.argv[1] + '/metrics').read().decode())" "$1"; }

mkdir -p "$work/origin"
publish "BANK ONE"
port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/origin" > "$work/origin.log" 2>&1 &
pids+=($!)
source="http://127.0.0.1:$port/manifest.json"
for _ in $(seq 100); do curl -fsS "$source" > /dev/null 2>&1 && break; sleep 0.1; done

updaters=() updater_metrics=() servers=() addresses=()
for i in 1 2 3; do
  "$BINARY" data sync --source "$source" --dest "$work/r$i" --interval "$INTERVAL" \
    --metrics-listen 127.0.0.1:0 > "$work/sync$i.log" 2>&1 &
  pids+=($!) updaters+=($!)
  updater_metrics+=("$(wait_line "$work/sync$i.log" 'metrics on http://[0-9.:]+' | sed 's|.*http://||')")
done
for i in 1 2 3; do
  until [ -e "$work/r$i/bins.csv" ]; do sleep 0.1; done
  "$BINARY" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --no-default-data \
    --bin-data "$work/r$i/bins.csv" --shutdown-grace 1s > "$work/serve$i.log" 2>&1 &
  pids+=($!) servers+=($!)
  addresses+=("$(wait_line "$work/serve$i.log" 'serving gRPC on [0-9.:]+' | sed 's/serving gRPC on //')")
done
for address in "${addresses[@]}"; do
  until serves "$address" "BANK ONE"; do sleep 0.1; done
done
echo "table: $ROWS rows, $(du -h "$work/table.csv" | cut -f1); updaters poll every $INTERVAL (±10%)"

# 2. An idle poll: the origin unchanged for IDLE seconds.
declare -A before_cpu before_polls
polls() { scrape "$1" | awk '/^cardlookup_sync_polls_total\{result="not_modified"\}/ {print $2}'; }
for i in 0 1 2; do
  before_cpu[$i]=$(cpu_ticks "${updaters[$i]}")
  before_polls[$i]=$(polls "${updater_metrics[$i]}")
done
sleep "$IDLE"
ticks=$(getconf CLK_TCK)
for i in 0 1 2; do
  cpu=$(( $(cpu_ticks "${updaters[$i]}") - before_cpu[$i] ))
  n=$(( $(polls "${updater_metrics[$i]}") - before_polls[$i] ))
  python3 -c "import sys; cpu, n, hz, i = map(int, sys.argv[1:]); print(f'updater {1 + i}: {n} idle polls (304) in ${IDLE} s took {cpu} clock ticks of {1000 / hz:.0f} ms of CPU: under {1000 * (cpu + 1) / hz / max(n, 1):.1f} ms a poll')" "$cpu" "$n" "$ticks" "$i"
done
grep -c '" 304 ' "$work/origin.log" | sed 's/^/origin: 304 answers so far: /'

# 3. Memory before the reload.
for i in 0 1 2; do
  echo "replica $((i + 1)) peak RSS before the new table: $(( $(hwm_kb "${servers[$i]}") / 1024 )) MiB; updater: $(( $(hwm_kb "${updaters[$i]}") / 1024 )) MiB"
done

# 1. Publish and time every replica's switch.
publish "BANK TWO"
start=$(now)
took=("" "" "")
done_count=0
deadline=$(( $(date +%s) + 120 ))
while [ "$done_count" -lt 3 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "not every replica serves the new table within 120 s" >&2; exit 1; }
  for i in 0 1 2; do
    if [ -z "${took[$i]}" ] && serves "${addresses[$i]}" "BANK TWO"; then
      took[$i]=$(python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.2f}')" "$(now)" "$start")
      done_count=$((done_count + 1))
    fi
  done
  sleep 0.05
done
for i in 0 1 2; do echo "replica $((i + 1)) serves the new table ${took[$i]} s after publication"; done
echo "every replica: $(printf '%s\n' "${took[@]}" | sort -n | tail -1) s after publication"
for i in 0 1 2; do
  echo "replica $((i + 1)) peak RSS after the reload: $(( $(hwm_kb "${servers[$i]}") / 1024 )) MiB; updater: $(( $(hwm_kb "${updaters[$i]}") / 1024 )) MiB"
done
