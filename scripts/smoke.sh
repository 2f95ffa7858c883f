#!/usr/bin/env bash
# The real-client check: starts the release binary on free ports and talks to it as an
# engineer would, with grpcurl (reflection, every RPC, health, an error code) and promtool
# (the /metrics exposition). Run scripts/install-tools.sh first. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

GRPCURL=${GRPCURL:-.tools/venv/bin/grpcurl}
BINARY=${BINARY:-target/release/card-lookup}
SERVICE=cardlookup.v1.CardLookupService
LOG=$(mktemp)
OUT=$(mktemp)
trap 'kill "$PID" 2>/dev/null || true; rm -f "$LOG" "$OUT"' EXIT

[ -x "$BINARY" ] || cargo build --release --locked
"$BINARY" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 >"$LOG" 2>&1 &
PID=$!

for _ in $(seq 1 100); do
  grep -q "serving gRPC on" "$LOG" && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG"; echo "smoke: the server exited" >&2; exit 1; }
  sleep 0.1
done
ADDR=$(sed -n 's/.*serving gRPC on \([0-9.:]*\),.*/\1/p' "$LOG" | head -1)
METRICS=$(sed -n 's|.*metrics on \(http://[0-9.:]*/metrics\).*|\1|p' "$LOG" | head -1)
ADMIN=$(sed -n 's/.*serving the admin service on \([0-9.:]*\).*/\1/p' "$LOG" | head -1)
[ -n "$ADDR" ] && [ -n "$METRICS" ] || { cat "$LOG"; echo "smoke: no start-up line" >&2; exit 1; }
grep -q "loaded 327012 BINs" "$LOG" || { cat "$LOG"; echo "smoke: BIN count not printed" >&2; exit 1; }

passed=0
failed=0
pass() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }
# expect NAME PATTERN COMMAND...: the command's output (whatever its exit status: grpcurl
# exits non-zero for error codes) must contain PATTERN.
expect() {
  local name=$1 pattern=$2
  shift 2
  "$@" >"$OUT" 2>&1 || true
  if grep -qF -- "$pattern" "$OUT"; then
    pass "$name"
  else
    fail "$name: expected '$pattern' in:"; sed 's/^/     /' "$OUT"
  fi
}
call() { "$GRPCURL" -plaintext -d "$2" "$ADDR" "$SERVICE/$1"; }

expect "list shows the service"       "$SERVICE"                 "$GRPCURL" -plaintext "$ADDR" list
expect "list shows health"            "grpc.health.v1.Health"    "$GRPCURL" -plaintext "$ADDR" list
expect "describe shows Validate"      "rpc Validate"             "$GRPCURL" -plaintext "$ADDR" describe "$SERVICE"
expect "health overall"               '"SERVING"'                "$GRPCURL" -plaintext "$ADDR" grpc.health.v1.Health/Check
expect "health of the service"        '"SERVING"'                "$GRPCURL" -plaintext -d "{\"service\":\"$SERVICE\"}" "$ADDR" grpc.health.v1.Health/Check
expect "Validate a Visa"              '"network": "CARD_NETWORK_VISA"' call Validate '{"number":"4111 1111 1111 1111"}'
expect "Validate says valid"          '"valid": true'            call Validate '{"number":"4111-1111-1111-1111"}'
expect "Validate says why not"        'VALIDATION_FAILURE_LUHN_FAILED' call Validate '{"number":"4111111111111112"}'
expect "LookupBin finds the issuer"   'AGRICULTURAL BANK OF CHINA' call LookupBin '{"number":"6228480000000000000"}'
expect "LookupBin gives the network"  'CARD_NETWORK_UNIONPAY'    call LookupBin '{"number":"622848"}'
expect "LookupBin refuses 5 digits"   'Code: InvalidArgument'    call LookupBin '{"number":"41111"}'
expect "MaskCard BIN and last four"   '"masked": "411111******1111"' call MaskCard '{"number":"4111111111111111","style":"MASK_STYLE_BIN_AND_LAST_FOUR"}'
expect "MaskCard refuses non-cards"   'Code: InvalidArgument'    call MaskCard '{"number":"1234"}'
expect "Inspect answers each item"    '"masked": "411111******1111"' call Inspect '{"items":[{"id":"a","number":"4111111111111111"},{"id":"b","number":"x"}],"maskStyle":"MASK_STYLE_BIN_AND_LAST_FOUR"}'
expect "Inspect shares BIN answers"   '"binIndex": 0'            call Inspect '{"items":[{"id":"a","number":"4111111111111111"},{"id":"b","number":"4111 1111 1111 1111"}],"binAnswers":"BIN_ANSWER_LAYOUT_SHARED"}'
expect "admin: index info"            '"format": "bin-list-data"' "$GRPCURL" -plaintext "$ADMIN" cardlookup.admin.v1.AdminService/GetIndexInfo
expect "admin: reload"                '"success": true'          "$GRPCURL" -plaintext "$ADMIN" cardlookup.admin.v1.AdminService/Reload

python3 - "$METRICS" >"$OUT.metrics" <<'PY'
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
PY
expect "metrics have gRPC histograms" 'grpc_server_handling_seconds_bucket' cat "$OUT.metrics"
if promtool check metrics <"$OUT.metrics" >"$OUT" 2>&1; then
  pass "promtool check metrics"
else
  fail "promtool check metrics:"; sed 's/^/     /' "$OUT"
fi
rm -f "$OUT.metrics"

kill -TERM "$PID"
if wait "$PID"; then pass "exits 0 on SIGTERM"; else fail "exit status $? on SIGTERM"; fi

# The same over mutual TLS, with certificates made here by openssl.
PKI=$(mktemp -d)
openssl_quiet() { openssl "$@" >/dev/null 2>&1; }
openssl_quiet req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Smoke CA" \
  -keyout "$PKI/ca.key" -out "$PKI/ca.pem"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$PKI/server.ext"
printf 'extendedKeyUsage=clientAuth\n' >"$PKI/client.ext"
for who in server client; do
  openssl_quiet req -newkey rsa:2048 -nodes -subj "/CN=smoke-$who" \
    -keyout "$PKI/$who.key" -out "$PKI/$who.csr"
  openssl_quiet x509 -req -in "$PKI/$who.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
    -CAcreateserial -days 2 -extfile "$PKI/$who.ext" -out "$PKI/$who.pem"
done
TLS_LOG=$(mktemp)
"$BINARY" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" --tls-client-ca "$PKI/ca.pem" >"$TLS_LOG" 2>&1 &
PID=$!
for _ in $(seq 1 100); do grep -q "serving gRPC on" "$TLS_LOG" && break; sleep 0.1; done
TLS_ADDR=$(sed -n 's/.*serving gRPC on \([0-9.:]*\),.*/\1/p' "$TLS_LOG" | head -1)
tls_call() {
  "$GRPCURL" -cacert "$PKI/ca.pem" -servername localhost "$@" \
    -d '{"number":"4111111111111111"}' "$TLS_ADDR" "$SERVICE/Validate"
}
expect "mTLS: grpcurl with a client certificate" '"valid": true' \
  tls_call -cert "$PKI/client.pem" -key "$PKI/client.key"
tls_call >"$OUT" 2>&1 && fail "mTLS: a client without a certificate got through" \
  || pass "mTLS: a client without a certificate is refused"
"$GRPCURL" -plaintext "$TLS_ADDR" list >"$OUT" 2>&1 && fail "mTLS: plaintext got through" \
  || pass "mTLS: plaintext is refused"
kill -TERM "$PID"
wait "$PID" || true
rm -rf "$PKI" "$TLS_LOG"
if grep -qE '4111111111111111|6228480000000000000' "$LOG"; then
  fail "a card number is in the log"
else
  pass "no card number in the log"
fi

echo "smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
