#!/usr/bin/env bash
# Where the time goes in the saturated service: runs the release binary under valgrind's
# callgrind, drives one RPC with h2load at saturation (4 connections x 10 streams, a fixed
# number of requests: callgrind is some 50 times slower than the real thing), and prints the
# functions with the most instructions of their own, and the inclusive costs of the main parts.
# Only the calls are measured: instrumentation starts after the BIN data has loaded.
#
#   bash bench/profile.sh                 # Validate, 20,000 calls
#   bash bench/profile.sh LookupBin 5000  # another RPC, another number of calls
#   bash bench/profile.sh --bare          # the bare baseline server (examples/bare_server.rs),
#                                         # answering the service's messages that the latest
#                                         # bench/load.sh run saved (else empty messages)
#   bash bench/profile.sh --bare --answers DIR  # ... the answers saved in DIR
#   bash bench/profile.sh --audit         # the service with --audit-dir (the writer thread's
#                                         # instructions count with the calls')
#   bash bench/profile.sh --no-build ...  # profile the binaries already built, as they are
#
# Instruction counts, not time: they leave out cache misses and waiting, and count the same on
# a busy machine as on an idle one. (Where `perf stat -e instructions true` works, `perf record`
# on `bash bench/load.sh` gives time-based profiles; on this virtual machine it does not.)
# Needs valgrind, h2load and python3; installs them with apt-get when missing (as root or
# through sudo). Traffic goes to 127.0.0.1 only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
server=service
answers=""
audit=0
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --no-build) build=0 ;;
    --bare) server=bare ;;
    --audit) audit=1 ;;
    --answers)
      answers="${2:?--answers needs a directory}"
      shift
      ;;
    *) echo "profile.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
rpc="${1:-Validate}"
calls="${2:-20000}"
case "$rpc" in Validate | LookupBin | MaskCard) ;; *) echo "profile.sh: unknown RPC $rpc" >&2; exit 2 ;; esac
[[ "$calls" =~ ^[0-9]+$ && "$calls" -ge 100 && "$calls" -le 1000000 ]] ||
  { echo "profile.sh: calls must be 100 to 1,000,000" >&2; exit 2; }

missing=()
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update >&2 && apt-get install -y "${missing[@]}" >&2
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update >&2 && sudo apt-get install -y "${missing[@]}" >&2
  else
    echo "profile.sh: install ${missing[*]} and run again" >&2
    exit 1
  fi
fi

command=(target/release/card-lookup --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --no-watch)
if [[ $server == bare ]]; then
  if [[ -z "$answers" ]]; then
    answers=$(ls -d target/bench-load/*/answers 2>/dev/null | tail -n 1 || true)
  fi
  if [[ -n "$answers" ]]; then
    echo "profile.sh: the bare server answers the messages saved in $answers" >&2
  else
    echo "profile.sh: no saved answers (run bench/load.sh once): the bare server answers" \
      "empty messages, smaller than the service's" >&2
  fi
  command=(target/release/examples/bare_server 127.0.0.1:0 ${answers:+"$answers"})
fi
if ((build)); then
  cargo build --release --locked --bin card-lookup --example bare_server >&2
fi
work="target/bench-profile/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$work"
if ((audit)); then
  [[ $server == service ]] || { echo "profile.sh: --audit is the service's" >&2; exit 2; }
  command+=(--audit-dir "$work/audit" --replica-name bench)
fi
python3 bench/load_helper.py bodies "$work"

RUST_LOG=info valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out" \
  "${command[@]}" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
address=""
for _ in $(seq 1200); do # at most 120 s: loading the data under valgrind is slow
  address=$(sed -n 's/.*serving gRPC on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$work/server.log")
  [[ -n "$address" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$address" ]] || { echo "profile.sh: the server did not start" >&2; exit 1; }

callgrind_control -i on "$pid" >/dev/null
timeout 600 h2load -t 1 -c 4 -m 10 -n "$calls" -d "$work/$rpc.bin" \
  -H 'content-type: application/grpc' -H 'te: trailers' \
  "http://$address/cardlookup.v1.CardLookupService/$rpc" >"$work/h2load.txt"
callgrind_control -i off "$pid" >/dev/null
grep -E '^(requests|status codes):' "$work/h2load.txt" >&2
kill -TERM "$pid"
wait "$pid" || true
trap - EXIT

total=$(callgrind_annotate "$work/callgrind.out" 2>/dev/null | sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "$server, $rpc: $calls calls, $((total / calls)) instructions a call (user space, all threads)"
echo
echo "Top functions by their own instructions (exclusive):"
callgrind_annotate --threshold=90 "$work/callgrind.out" 2>/dev/null |
  sed -n '/file:function/,$p' | sed '1d' | head -n 30
echo
echo "Inclusive costs (a function and all it calls):"
callgrind_annotate --inclusive=yes --threshold=99 "$work/callgrind.out" 2>/dev/null |
  sed -n '/file:function/,$p' | sed '1d' | head -n 45
echo
echo "callgrind output: $work/callgrind.out (callgrind_annotate, or kcachegrind)"
