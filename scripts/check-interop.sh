#!/usr/bin/env bash
# The interop check: a Python client, generated from proto/ with grpcio-tools at test time,
# calls the release binary as a payment team would (tests/interop/, run with pytest).
#
# Installs what it needs itself, from the package registries only:
#   python3 + venv  Debian's python3 and python3-venv, when missing (needs root, as in CI)
#   the tests' Python packages (tests/interop/requirements.txt, pinned) into .tools/interop-venv
# Builds target/release/card-lookup with `cargo build --release --locked` only when it is
# missing (CARD_LOOKUP_BINARY=PATH tests another binary).
# Usage: bash scripts/check-interop.sh [PYTEST ARGS]     Ends with pytest's summary line and
# exits non-zero when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.tools/interop-venv
REQUIREMENTS=tests/interop/requirements.txt

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "python3 with venv is missing: run 'sudo apt-get install -y python3 python3-venv'" >&2
    exit 1
  fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3 python3-venv >/dev/null
fi

# (Re)install when the venv is new or the pinned requirements changed since the last install.
if ! cmp -s "$REQUIREMENTS" "$VENV/.installed-requirements" 2>/dev/null; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$VENV/.installed-requirements"
fi

binary=${CARD_LOOKUP_BINARY:-target/release/card-lookup}
if [ ! -x "$binary" ]; then
  echo "building $binary"
  cargo build --release --locked
fi
if [ ! -x "$binary" ]; then
  echo "$binary is missing (CARD_LOOKUP_BINARY names no executable)" >&2
  exit 1
fi
export CARD_LOOKUP_BINARY
CARD_LOOKUP_BINARY=$(realpath "$binary")

"$VENV/bin/python" - <<'EOF'
from importlib.metadata import version
print("interop client: grpcio-tools", version("grpcio-tools"), "| grpcio", version("grpcio"),
      "| protobuf", version("protobuf"), "| pytest", version("pytest"))
EOF
echo "server under test: $CARD_LOOKUP_BINARY"

# No __pycache__ in the work tree; the generated client lives in a temporary directory.
export PYTHONDONTWRITEBYTECODE=1
exec "$VENV/bin/python" -m pytest tests/interop "$@"
