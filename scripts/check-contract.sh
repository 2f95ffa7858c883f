#!/usr/bin/env bash
# Contract checks for the gRPC API in proto/ (configuration: proto/buf.yaml):
#   1. buf lint      STANDARD rules, plus a comment on every element of cardlookup.v1
#   2. buf breaking  FILE rules, against the latest release's image in proto/releases/
#   3. a self-test   the breaking check must reject a renumbered field (in a temporary copy), so
#                    a broken baseline cannot make step 2 pass for nothing
# Installs buf itself: the npm package @bufbuild/buf (it carries the binary) into .tools/npm.
# Needs node and npm (on the machine; installed with apt-get when missing and running as root).
# Usage: bash scripts/check-contract.sh      Exit status non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0
BUF=.tools/npm/node_modules/.bin/buf

step() { printf '\n--> %s\n' "$*"; }

if [ "$("$BUF" --version 2>/dev/null || true)" != "$BUF_VERSION" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "npm is missing: install Node.js and npm (Debian: apt-get install nodejs npm)" >&2
      exit 1
    fi
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  mkdir -p .tools/npm
  npm install --prefix .tools/npm --no-audit --no-fund --loglevel=error \
    "@bufbuild/buf@$BUF_VERSION" >/dev/null
fi
echo "buf $("$BUF" --version)"

# The baseline: the newest release image, by version order (v0.10.0 after v0.9.0).
baseline=$(find proto/releases -maxdepth 1 -name 'v*.binpb' -printf '%f\n' 2>/dev/null |
  sort -V | tail -n 1)
if [ -z "$baseline" ]; then
  echo "no release image in proto/releases/ to compare against (see docs/clients.md)" >&2
  exit 1
fi
baseline=proto/releases/$baseline

step "buf lint proto"
"$BUF" lint proto
echo "no lint findings in: $("$BUF" ls-files proto | tr '\n' ' ')"

step "buf breaking proto --against $baseline"
"$BUF" breaking proto --against "$baseline"
echo "no breaking change since $(basename "$baseline" .binpb)"

step "self-test: buf breaking rejects a renumbered field"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r proto "$scratch/"
sed -i 's/^\(  string number = \)1;/\1101;/' "$scratch/proto/cardlookup/v1/card_lookup.proto"
if ! grep -q 'string number = 101;' "$scratch/proto/cardlookup/v1/card_lookup.proto"; then
  echo "self-test could not renumber a field: update this script" >&2
  exit 1
fi
set +e
findings=$("$BUF" breaking "$scratch/proto" --against "$baseline" 2>&1)
status=$?
set -e
if [ "$status" -eq 0 ] || ! grep -q 'Previously present field "1" with name "number"' <<<"$findings"; then
  echo "buf breaking did not report the renumbered field (exit $status):" >&2
  echo "$findings" >&2
  exit 1
fi
echo "reported as expected: $(head -n 1 <<<"$findings" | sed "s|$scratch/||")"

printf '\ncontract checks passed\n'
