#!/usr/bin/env bash
# The HTTP/JSON port's load benchmark (issue 20): binlist's `GET /{bin}` over HTTP/2 and
# HTTP/1.1 against the gRPC port's LookupBin of the same BIN, on one release binary serving
# both, driven by h2load on this machine's loopback. BENCHMARKS.md records a run.
#
#   bash bench/http-load.sh                 # about a minute (after the build)
#   bash bench/http-load.sh --duration 10   # seconds a run (default 5, after 1 s of warm-up)
#   bash bench/http-load.sh --no-build      # measure target/release/card-lookup as it is
#
# Modes, each run once a target:
#   saturation   40 requests in flight (HTTP/2 and gRPC: 4 connections x 10 streams; HTTP/1.1,
#                which has one request a connection at a time: 40 connections)
#   5000 req/s   10 connections at 500 req/s each (HTTP/2 and HTTP/1.1)
# Every request must be answered 200 (and, for gRPC, is checked by the metrics' OK count in
# bench/load.sh, not here: this script compares throughput and latency). p99 is the nearest
# rank over h2load's per-request log. Targets (printed, never the exit code): GET /{bin} at
# saturation at least 80% of gRPC LookupBin's requests a second; p99 under 1 ms at 5,000 req/s.
#
# Needs: cargo, python3, h2load (Debian's nghttp2-client).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=5
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "http-load.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v h2load >/dev/null 2>&1 || { echo "http-load.sh: needs h2load (nghttp2-client)" >&2; exit 1; }
[ "$build" = 1 ] && cargo build --release --quiet --bin card-lookup

BIN=45710012
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
grpc_port=$(free_port); http_port=$(free_port); metrics_port=$(free_port)
target/release/card-lookup --listen "127.0.0.1:$grpc_port" --http-listen "127.0.0.1:$http_port" \
  --metrics-listen "127.0.0.1:$metrics_port" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $http_port), 1)" 2>/dev/null && break
  sleep 0.1
done

# LookupBinRequest{number: BIN}, gRPC-framed: no compression, 4-byte length, field 1.
python3 -c "
import struct, sys
message = b'\x0a' + bytes([len('$BIN')]) + b'$BIN'
sys.stdout.buffer.write(b'\x00' + struct.pack('>I', len(message)) + message)" >"$work/lookup.bin"

# Runs h2load; prints "requests/s p99_ms". Arguments: name, then h2load's options and URL.
run() {
  local name=$1; shift
  h2load -t 1 --log-file "$work/$name.log" "$@" >"$work/$name.out" 2>&1 ||
    { cat "$work/$name.out" >&2; exit 1; }
  if ! grep -q ' 0 failed, 0 errored' "$work/$name.out"; then
    echo "http-load.sh: $name: failed requests" >&2; cat "$work/$name.out" >&2; exit 1
  fi
  local rps
  rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$work/$name.out")
  python3 - "$work/$name.log" "$rps" <<'PY'
import sys
durations = sorted(int(line.split()[2]) for line in open(sys.argv[1]) if line.strip())
statuses = {line.split()[1] for line in open(sys.argv[1]) if line.strip()}
assert statuses <= {"200"}, statuses
p99 = durations[max(0, -(-len(durations) * 99 // 100) - 1)] / 1000
print(f"{float(sys.argv[2]):.0f} {p99:.3f}")
PY
}

saturated="-D $duration --warm-up-time 1"
grpc_url="http://127.0.0.1:$grpc_port/cardlookup.v1.CardLookupService/LookupBin"
http_url="http://127.0.0.1:$http_port/$BIN"
# shellcheck disable=SC2086
{
  read -r grpc_rps grpc_p99 < <(run grpc-sat $saturated -c 4 -m 10 -d "$work/lookup.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' "$grpc_url")
  read -r h2_rps h2_p99 < <(run h2-sat $saturated -c 4 -m 10 "$http_url")
  read -r h1_rps h1_p99 < <(run h1-sat $saturated --h1 -c 40 -m 1 "$http_url")
  fixed="-n $((5000 * duration)) -c 10 --rps 500 -r 1 --rate-period 1ms"
  read -r h2f_rps h2f_p99 < <(run h2-5000 $fixed "$http_url")
  read -r h1f_rps h1f_p99 < <(run h1-5000 $fixed --h1 -m 1 "$http_url")
}

printf '%-32s %12s %10s\n' "target" "requests/s" "p99 ms"
printf '%-32s %12s %10s\n' "gRPC LookupBin, saturation" "$grpc_rps" "$grpc_p99"
printf '%-32s %12s %10s\n' "GET /{bin} HTTP/2, saturation" "$h2_rps" "$h2_p99"
printf '%-32s %12s %10s\n' "GET /{bin} HTTP/1.1, saturation" "$h1_rps" "$h1_p99"
printf '%-32s %12s %10s\n' "GET /{bin} HTTP/2, 5000 req/s" "$h2f_rps" "$h2f_p99"
printf '%-32s %12s %10s\n' "GET /{bin} HTTP/1.1, 5000 req/s" "$h1f_rps" "$h1f_p99"
python3 - "$grpc_rps" "$h2_rps" "$h1_rps" "$h2f_p99" "$h1f_p99" <<'PY'
import sys
grpc, h2, h1, h2p99, h1p99 = map(float, sys.argv[1:])
for name, rps in (("HTTP/2", h2), ("HTTP/1.1", h1)):
    share = rps / grpc
    print(f"target: {name} GET /{{bin}} at >= 80% of gRPC LookupBin: {share:.0%}, {'met' if share >= 0.8 else 'NOT met'}")
for name, p99 in (("HTTP/2", h2p99), ("HTTP/1.1", h1p99)):
    print(f"target: {name} p99 < 1 ms at 5000 req/s: {p99:.3f} ms, {'met' if p99 < 1 else 'NOT met'}")
PY
