#!/usr/bin/env bash
# The load benchmark of issue 4: the service against a bare tonic server of the same proto that
# does no work (examples/bare_server.rs) but answers the service's own response messages (saved
# from one call to the service before the runs, so both send the same sizes), both driven by
# h2load on this machine's loopback with gRPC-framed request bodies, in the same run.
# BENCHMARKS.md records a run and how to read it.
#
#   bash bench/load.sh            # about 8 minutes (after the build)
#   bash bench/load.sh --quick    # about half a minute, for CI smoke use (rough figures)
#   bash bench/load.sh --rounds 5 --duration 5 --rpcs "Validate LookupBin"
#   bash bench/load.sh --no-build       # measure the binaries already in target/release
#   bash bench/load.sh --saturation-only  # only the saturation mode (about a third of the time):
#                                       # for many runs of one throughput target, read together
#                                       # with `python3 bench/load_helper.py pool RUN_DIR...`
#   bash bench/load.sh --max-others 5   # repeat a round (up to 10 times, 10 s apart) while
#                                       # other processes use more than 5% of the cores
#   bash bench/load.sh --preload /usr/lib/x86_64-linux-gnu/libjemalloc.so.2
#                                       # both servers with another allocator (LD_PRELOAD)
#   bash bench/load.sh --quota          # the service with one subject quota on every call,
#                                       # counted in a redis-server started here (never
#                                       # reached: the quota is 4,000,000,000/s, so each
#                                       # replica leases 1,000 calls at a time); every
#                                       # request carries x-cardlookup-subject
#   bash bench/load.sh --quota-exact    # the same with --quota-exact: every call checked in
#                                       # Redis, as quotas under 2,000 calls a second are
#   bash bench/load.sh --audit          # the service with --audit-dir (a directory under the
#                                       # run's output; its bytes per call are printed at the end)
#   bash bench/load.sh --http           # also the HTTP port (--http-listen): binlist's
#                                       # GET /{bin} of the LookupBin number's first 8 digits,
#                                       # over HTTP/2 and HTTP/1.1, against the gRPC LookupBin
#                                       # of the same service (saturation and 5000 req/s)
#
# For each RPC (Validate, LookupBin, MaskCard) it measures three modes:
#   saturation   4 connections x 10 streams (40 requests in flight), as fast as answers come
#   5000 req/s   fixed rate: 10 connections, each at 500 req/s, up to 10 streams each
#   50000 req/s  fixed rate: 10 connections, each at 5,000 req/s, up to 10 streams each
# h2load sends a connection's due requests at most every 10 ms (its --rps timer), so at a fixed
# rate requests come in bursts; the 10 connections are opened 1 ms apart (-r 1 --rate-period
# 1ms) so that their bursts interleave: rate/1000 requests every millisecond rather than
# rate/100 every 10 ms. The latency at a fixed rate still includes the wait behind the others
# of a burst, for both servers alike.
#
# Each mode runs in rounds (default 5 of 3 s a server, after 1 s of warm-up; --quick: 1 round
# of 1 s after 0.3 s) that alternate between the service and the bare server, so that a slow
# spell of the machine hits both alike. A row of the table gives the median of its rounds'
# requests/s and the percentiles of all their requests together. Five rounds rather than three:
# on this virtual machine single rounds of either server run 10-20% slow now and then, and
# the median of five shrugs off two of them. h2load runs on one thread
# (-t 1); both servers use one Tokio worker per core, so load generator and servers share the
# cores, as issue 4 specifies. The "server CPU a call" column is the server process's user and
# system time (from /proc) over the calls h2load counted: steadier than requests/s from run to
# run, and it shows how much more work a service call is than a bare one. The "others" column
# is the share of all cores that other processes used during the row's rounds (the most of any
# round): above a few percent, someone else's work disturbed the figures.
#
# Latency percentiles come from h2load's per-request log (--log-file), nearest rank, without
# the warm-up. h2load counts any HTTP 200 as a success, even when the gRPC status is not OK, so
# the script checks separately: one call to each server and RPC before the runs (nghttp, with
# the same body) must answer grpc-status 0 with the expected message, and for the service the
# OK count of `grpc_server_handled_total` on its /metrics must grow by at least the requests
# h2load counted as succeeded, and no other status may be counted but for the requests in
# flight when h2load stopped: a saturation run ends by closing its connections under up to 40
# calls, which count as `Canceled` (or `Unknown`, tonic's code for a request cut off in the
# middle). Any failed check, or a request
# h2load saw fail, makes the script exit 1. The issue's targets are printed as met or not met;
# they never change the exit code (timings vary by machine).
#
# With --http the service also serves HTTP, and LookupBin's saturation and 5000 req/s modes run
# two more "servers": GET /{bin} on the HTTP port over HTTP/2 (4 connections x 10 streams at
# saturation, as gRPC) and over HTTP/1.1 (one request a connection at a time: 40 connections at
# saturation, 10 at a fixed rate). HTTP calls are counted in the same grpc_server_handled_total
# series, so the same checks apply; the binlist document is checked once before the runs.
#
# Needs: cargo, python3, h2load and nghttp (Debian's nghttp2-client: installed here when missing,
# with apt-get, as root or through sudo). Traffic goes to 127.0.0.1 only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=3
warm_up_ms=1000
rounds=5
rpcs="Validate LookupBin MaskCard"
build=1
preload=""
max_others=""
quota=0
quota_exact=0
audit=0
http=0
modes=(saturation "5000 req/s" "50000 req/s")
while (($#)); do
  case "$1" in
    --quick) duration=1 warm_up_ms=300 rounds=1 ;;
    --duration) duration="${2:?--duration needs seconds}"; shift ;;
    --rounds) rounds="${2:?--rounds needs a number}"; shift ;;
    --rpcs) rpcs="${2:?--rpcs needs a list such as \"Validate LookupBin\"}"; shift ;;
    --no-build) build=0 ;;
    --saturation-only) modes=(saturation) ;;
    --max-others) max_others="${2:?--max-others needs a percentage}"; shift ;;
    --preload) preload="${2:?--preload needs a shared library}"; shift ;;
    --quota) quota=1 ;;
    --quota-exact) quota=1 quota_exact=1 ;;
    --audit) audit=1 ;;
    --http) http=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "load.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$duration" =~ ^[0-9]+$ && "$duration" -ge 1 && "$duration" -le 600 ]] ||
  { echo "load.sh: --duration takes 1 to 600 seconds" >&2; exit 2; }
[[ "$rounds" =~ ^[0-9]+$ && "$rounds" -ge 1 && "$rounds" -le 20 ]] ||
  { echo "load.sh: --rounds takes 1 to 20" >&2; exit 2; }
[[ -z "$max_others" || "$max_others" =~ ^[0-9]+$ && "$max_others" -le 100 ]] ||
  { echo "load.sh: --max-others takes a percentage, 0 to 100" >&2; exit 2; }
for rpc in $rpcs; do
  case "$rpc" in Validate | LookupBin | MaskCard) ;; *) echo "load.sh: unknown RPC $rpc" >&2; exit 2 ;; esac
done
((http)) && [[ " $rpcs " != *" LookupBin "* ]] &&
  { echo "load.sh: --http is measured against LookupBin: add it to --rpcs" >&2; exit 2; }

step() { printf '\n==> %s\n' "$*" >&2; }

install_packages() {
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update && apt-get install -y "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update && sudo apt-get install -y "$@"
  else
    echo "load.sh: install $* (Debian: apt-get install -y $*) and run again" >&2
    exit 1
  fi
}

step "tools"
missing=()
command -v h2load >/dev/null 2>&1 && command -v nghttp >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
((quota)) && { command -v redis-server >/dev/null 2>&1 || missing+=(redis-server); }
if ((${#missing[@]})); then
  install_packages "${missing[@]}" >&2
fi
h2load --version | head -n 1 >&2

if ((build)); then
  step "release build: the service and the bare baseline server"
  cargo build --release --locked --bin card-lookup --example bare_server >&2
fi
for binary in target/release/card-lookup target/release/examples/bare_server; do
  [[ -x $binary ]] || { echo "load.sh: $binary is missing (run without --no-build)" >&2; exit 1; }
done

work="target/bench-load/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$work"
# What the rounds measure, for `load_helper.py pool`: it reads runs together only when these
# lines are the same (the same binaries, run with the same options).
measured_options=()
((audit)) && measured_options+=(--audit)
((quota)) && measured_options+=("$( ((quota_exact)) && echo --quota-exact || echo --quota)")
((http)) && measured_options+=(--http)
[[ -n "$preload" ]] && measured_options+=(--preload "$preload")
{
  echo "service binary $(sha256sum target/release/card-lookup | cut -c 1-12)"
  echo "bare binary $(sha256sum target/release/examples/bare_server | cut -c 1-12)"
  echo "options: ${measured_options[*]:-none}; rounds of $duration s after $warm_up_ms ms of warm-up"
} >"$work/measured"
python3 bench/load_helper.py bodies "$work"

pids=()
redis_pid=""
cleanup() {
  for pid in "${pids[@]}" $redis_pid; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}" $redis_pid; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

# Waits (at most 60 s) for the line a server logs once it listens; prints the line.
wait_for_line() {
  local pid="$1" log="$2" pattern="$3"
  for _ in $(seq 600); do
    if grep -q "$pattern" "$log"; then
      grep -m 1 "$pattern" "$log"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "load.sh: the server stopped; its log ($log):" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "load.sh: the server did not start listening within 60 s ($log)" >&2
  return 1
}

headers=(-H 'content-type: application/grpc' -H 'te: trailers')
# What every request carries, whichever port (the quota's subject).
common_headers=()
quota_flags=()
if ((quota)); then
  step "starting redis-server on 127.0.0.1 for --quota"
  redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  redis-cli -p "$redis_port" ping | grep -q PONG || { echo "load.sh: redis-server did not start" >&2; exit 1; }
  quota_flags=(--redis-url "redis://127.0.0.1:$redis_port" --quota bench-shopper=4000000000/s:subject)
  ((quota_exact)) && quota_flags+=(--quota-exact)
  common_headers+=(-H 'x-cardlookup-subject: shopper-1')
fi

audit_flags=()
((audit)) && audit_flags=(--audit-dir "$work/audit" --replica-name bench)
http_flags=()
((http)) && http_flags=(--http-listen 127.0.0.1:0)

step "starting the service on 127.0.0.1"
[[ -z "$preload" || -f "$preload" ]] || { echo "load.sh: no library $preload" >&2; exit 2; }
RUST_LOG=info LD_PRELOAD="$preload" target/release/card-lookup --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --no-watch "${quota_flags[@]}" "${audit_flags[@]}" "${http_flags[@]}" >"$work/service.log" 2>&1 &
pids+=($!)
line=$(wait_for_line "${pids[-1]}" "$work/service.log" "serving gRPC on")
service=$(sed -n 's/.*serving gRPC on \([0-9.]*:[0-9]*\).*/\1/p' <<<"$line")
metrics_url=$(sed -n 's/.*metrics on \(http:[^ ,]*\/metrics\).*/\1/p' <<<"$line")
[[ -n "$service" && -n "$metrics_url" ]] || { echo "load.sh: cannot read the service's addresses" >&2; exit 1; }
http_address=""
if ((http)); then
  http_address=$(sed -n 's/.*serving HTTP\/JSON on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$work/service.log")
  [[ -n "$http_address" ]] || { echo "load.sh: cannot read the HTTP port's address" >&2; exit 1; }
fi

url() { echo "http://$1/cardlookup.v1.CardLookupService/$2"; }
# binlist's lookup on the HTTP port: the first 8 digits of the number the gRPC bodies carry.
binlist_url="http://$http_address/$(python3 -c 'import sys; sys.path.insert(0, "bench"); import load_helper; print(load_helper.NUMBER[:8])')"

# Calls RPC on the server at ADDRESS once, with the benchmark's body; fails unless the answer
# is grpc-status 0. Leaves the frames and the body in $work/check-NAME-RPC.{frames,body}.
check_call() {
  local name="$1" address="$2" rpc="$3"
  local out="$work/check-$name-$rpc"
  timeout 10 nghttp -v -n "${headers[@]}" "${common_headers[@]}" -d "$work/$rpc.bin" "$(url "$address" "$rpc")" >"$out.frames"
  timeout 10 nghttp "${headers[@]}" "${common_headers[@]}" -d "$work/$rpc.bin" "$(url "$address" "$rpc")" >"$out.body"
  grep -q 'grpc-status: 0$' "$out.frames" ||
    { echo "load.sh: $name $rpc did not answer grpc-status 0:" >&2; grep 'grpc-' "$out.frames" >&2; exit 1; }
}

step "checking the service's answers; saving them for the bare server"
mkdir -p "$work/answers"
for rpc in $rpcs; do
  check_call service "$service" "$rpc"
  python3 bench/load_helper.py check-response "$rpc" "$work/check-service-$rpc.body"
  python3 bench/load_helper.py save-answer "$work/check-service-$rpc.body" "$work/answers/$rpc.answer"
  echo "service $rpc: grpc-status 0, expected answer" >&2
done

step "starting the bare server on 127.0.0.1, answering the service's messages"
LD_PRELOAD="$preload" target/release/examples/bare_server 127.0.0.1:0 "$work/answers" >"$work/bare.log" 2>&1 &
pids+=($!)
line=$(wait_for_line "${pids[-1]}" "$work/bare.log" "serving gRPC on")
bare=$(sed -n 's/.*serving gRPC on \([0-9.]*:[0-9]*\).*/\1/p' <<<"$line")
[[ -n "$bare" ]] || { echo "load.sh: cannot read the bare server's address" >&2; exit 1; }
case "$service $bare $metrics_url" in
  127.0.0.1:*" "127.0.0.1:*" "http://127.0.0.1:*) ;;
  *) echo "load.sh: a server is not on 127.0.0.1" >&2; exit 1 ;;
esac
echo "service on $service (metrics $metrics_url), bare server on $bare" >&2
for rpc in $rpcs; do
  check_call bare "$bare" "$rpc"
  python3 bench/load_helper.py same-answer "$work/check-bare-$rpc.body" "$work/answers/$rpc.answer"
  echo "bare $rpc: grpc-status 0, the service's message" >&2
done
if ((http)); then
  python3 bench/load_helper.py check-binlist "$binlist_url"
  echo "HTTP port $http_address: binlist's document for a Visa BIN" >&2
fi

# CPU ticks (1/100 s) used so far: by the whole machine (busy, not idle or waiting), by one
# process (user and system), and by the two servers. h2load's own come from bash's `times`
# around each run.
machine_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
process_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
server_ticks() {
  local total=0 pid
  for pid in "${pids[@]}"; do
    total=$((total + $(process_ticks "$pid")))
  done
  echo "$total"
}
# Sets variable $1 to the user and system time of this shell's finished children so far, in
# ticks (h2load is the only child that finishes during a run). `times` must run in this shell,
# not in a $(...) subshell, which has children of its own.
children_ticks() {
  times >"$work/times"
  printf -v "$1" '%s' "$(awk 'END {
    total = 0
    for (i = 1; i <= 2; i++) { split($i, t, /m|s/); total += t[1] * 60 + t[2] }
    printf "%d\n", total * 100 + 0.5 }' "$work/times")"
}

# Runs h2load once. Arguments: server, rpc, mode, round, attempt. Appends a row to rounds.tsv:
# rpc, server, mode, round, requests/s, others' CPU share, log file, warm-up to leave out (ms),
# the server's CPU time a call (µs, user and system: from /proc after the warm-up for
# saturation, whose h2load counts leave the warm-up out; over the whole run at a fixed rate).
# Returns 1 (and appends nothing) when other processes disturbed the round beyond --max-others
# and attempts remain.
max_attempts=10
failures=0
run() {
  local server="$1" rpc="$2" mode="$3" round="$4" attempt="$5"
  # pids: the service was started first, then the bare server.
  local address=$service pid=${pids[0]}
  [[ $server == bare ]] && address=$bare pid=${pids[1]}
  # What h2load asks: a gRPC call, or binlist's lookup on the HTTP port over one HTTP version
  # (HTTP/1.1 has one request in flight a connection: as many connections as streams).
  local request=(-d "$work/$rpc.bin" "${headers[@]}" "${common_headers[@]}" "$(url "$address" "$rpc")")
  local version=()
  case "$server" in
    http2) request=("${common_headers[@]}" "$binlist_url") ;;
    http1) request=("${common_headers[@]}" "$binlist_url") version=(--h1) ;;
  esac
  local name
  name="$work/$server-$rpc-${mode//[^A-Za-z0-9]/}-$round-$attempt"
  local options skip_ms
  # Requests in flight at most: connections x streams a connection.
  local in_flight
  case "$mode" in
    saturation)
      # h2load leaves the warm-up out of its log and its figures itself.
      options=(-c 4 -m 10 -D "$duration" --warm-up-time "${warm_up_ms}ms")
      [[ $server == http1 ]] && options=(-c 40 -m 1 -D "$duration" --warm-up-time "${warm_up_ms}ms")
      in_flight=40
      skip_ms=0
      ;;
    *)
      # A fixed number of requests at the rate (h2load's --rps has no warm-up of its own): the
      # first warm_up_ms of the log are left out of the figures.
      local rate=${mode%% *}
      options=(-c 10 -m 10 -r 1 --rate-period 1ms --rps $((rate / 10))
        -n $((rate * duration + rate * warm_up_ms / 1000)))
      [[ $server == http1 ]] && options[3]=1
      in_flight=100
      skip_ms=$warm_up_ms
      ;;
  esac
  local before=(0 0 0)
  [[ $server != bare ]] && read -r -a before < <(python3 bench/load_helper.py handled "$metrics_url" "$rpc")
  local machine0 servers0 h2load0 h2load1 started
  machine0=$(machine_ticks) servers0=$(server_ticks)
  children_ticks h2load0
  started=$(date +%s%N)
  timeout $((duration * 2 + 60)) h2load -t 1 "${version[@]}" "${options[@]}" --log-file "$name.log" \
    "${request[@]}" >"$name.h2load" 2>&1 &
  local h2load_pid=$! cpu0 cpu1
  [[ $mode == saturation ]] && sleep "$(awk -v ms="$warm_up_ms" 'BEGIN { print ms / 1000 }')"
  cpu0=$(process_ticks "$pid")
  wait "$h2load_pid" ||
    { echo "load.sh: h2load failed ($name.h2load)" >&2; cat "$name.h2load" >&2; exit 1; }
  cpu1=$(process_ticks "$pid")
  children_ticks h2load1
  # What the rest of the machine used meanwhile, as a share of all cores: other processes
  # (someone compiling) slow both servers and make the comparison noisy.
  local others
  others=$(awk -v m=$(($(machine_ticks) - machine0)) -v s=$(($(server_ticks) - servers0)) \
    -v h=$((h2load1 - h2load0)) -v ns=$(($(date +%s%N) - started)) -v cores="$(nproc)" \
    'BEGIN { o = (m - s - h) / (ns / 1e7 * cores); printf "%.3f\n", (o < 0 ? 0 : o) }')
  local succeeded failed errored
  read -r succeeded failed errored < <(sed -n \
    's/^requests: .* \([0-9]*\) succeeded, \([0-9]*\) failed, \([0-9]*\) errored.*/\1 \2 \3/p' "$name.h2load")
  if [[ -z "$succeeded" ]]; then
    echo "load.sh: cannot read h2load's summary ($name.h2load)" >&2
    exit 1
  fi
  if ((failed + errored > 0 || succeeded == 0)); then
    echo "load.sh: $server $rpc $mode: $succeeded succeeded, $failed failed, $errored errored" >&2
    failures=$((failures + 1))
  fi
  if [[ $server != bare ]]; then
    local after=(0 0 0)
    read -r -a after < <(python3 bench/load_helper.py handled "$metrics_url" "$rpc")
    local ok=$((after[0] - before[0])) cancelled=$((after[1] - before[1]))
    local other=$((after[2] - before[2]))
    # The warm-up's calls are counted by the server too, so OK grows by at least `succeeded`.
    if ((ok < succeeded || cancelled + other > in_flight)); then
      echo "load.sh: $rpc $mode: the service counted $ok OK, $cancelled Canceled and $other" \
        "other answers for $succeeded successes in h2load ($in_flight in flight at most)" >&2
      failures=$((failures + 1))
    fi
  fi
  local count non_200 rps p50 p99 p999
  read -r count non_200 rps p50 p99 p999 < <(python3 bench/load_helper.py latency "$name.log" "$skip_ms")
  if ((non_200 > 0)); then
    echo "load.sh: $server $rpc $mode: $non_200 answers were not HTTP 200" >&2
    failures=$((failures + 1))
  fi
  if [[ $mode == saturation ]]; then
    rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$name.h2load")
  fi
  if [[ -n "$max_others" && $attempt -lt $max_attempts ]] &&
    awk -v o="$others" -v m="$max_others" 'BEGIN { exit !(o * 100 > m) }'; then
    printf '%-9s %-7s %-11s round %s: other processes used %.0f%% of the cores; again in 10 s\n' \
      "$rpc" "$server" "$mode" "$round" "$(awk -v o="$others" 'BEGIN{print o * 100}')" >&2
    return 1
  fi
  local cpu_us
  cpu_us=$(awk -v t=$((cpu1 - cpu0)) -v n="$succeeded" 'BEGIN { printf "%.2f\n", n ? t * 1e4 / n : 0 }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rpc" "$server" "$mode" "$round" "$rps" "$others" \
    "$name.log" "$skip_ms" "$cpu_us" >>"$work/rounds.tsv"
  printf '%-9s %-7s %-11s round %s: %7.0f req/s  p50 %5s µs  p99 %5s µs  p99.9 %5s µs  CPU %5.1f µs a call  others %3.0f%% CPU\n' \
    "$rpc" "$server" "$mode" "$round" "$rps" "$p50" "$p99" "$p999" "$cpu_us" "$(awk -v o="$others" 'BEGIN{print o * 100}')" >&2
}

step "measuring: $rounds rounds of $duration s a server and mode, after ${warm_up_ms} ms of warm-up each"
load_at_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
: >"$work/rounds.tsv"
for rpc in $rpcs; do
  for mode in "${modes[@]}"; do
    for round in $(seq "$rounds"); do
      # Alternate which server goes first, so that a slow spell hits both alike.
      order=(service bare)
      ((round % 2 == 0)) && order=(bare service)
      [[ $http == 1 && $rpc == LookupBin && $mode != "50000 req/s" ]] && order+=(http2 http1)
      for server in "${order[@]}"; do
        for attempt in $(seq "$max_attempts"); do
          run "$server" "$rpc" "$mode" "$round" "$attempt" && break
          sleep 10
        done
      done
    done
  done
done
load_at_end=$(cut -d ' ' -f 1-3 /proc/loadavg)

step "results"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "machine: $(nproc) cores, ${cpu:-unknown CPU}; load average (1, 5, 15 min) $load_at_start at the start, $load_at_end at the end"
echo "$rounds rounds of $duration s after ${warm_up_ms} ms of warm-up${preload:+; both servers with LD_PRELOAD=$preload}; raw output in $work"
echo
python3 bench/load_helper.py table "$work/rounds.tsv"
if ((audit)); then
  audit_bytes=$(cat "$work"/audit/*.jsonl | wc -c)
  audit_events=$(cat "$work"/audit/*.jsonl | grep -vc '^{"record"' || true)
  echo
  echo "audit trail: $audit_events events, $audit_bytes bytes, $((audit_bytes / (audit_events > 0 ? audit_events : 1))) bytes an event"
fi
if ((failures > 0)); then
  echo "load.sh: $failures checks failed (above)" >&2
  exit 1
fi
