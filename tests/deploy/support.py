"""What the deploy suite's fixtures and tests share: the paths under test, finding tools,
running commands, grpcurl, the live /metrics, and waiting for a condition."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
import card_lookup_process  # noqa: E402

KUBERNETES_VERSION = "1.37.0"
OVERLAY = ROOT / "deploy/kubernetes/overlays/example"
BASE = ROOT / "deploy/kubernetes/base"
TLS_PATCH = OVERLAY / "tls-patch.yaml"
KEDA_EXAMPLE = ROOT / "deploy/kubernetes/examples/keda-scaledobject.yaml"
DATA_SYNC = ROOT / "deploy/kubernetes/components/data-sync"
QUOTAS = ROOT / "deploy/kubernetes/components/quotas"
AUDIT_TRAIL = ROOT / "deploy/kubernetes/components/audit-trail"
RULES = ROOT / "deploy/prometheus/card-lookup.rules.yml"
RULE_TESTS = ROOT / "deploy/prometheus/tests"
DASHBOARD = ROOT / "deploy/grafana/card-lookup.json"
DOCKERFILE = ROOT / "deploy/docker/Dockerfile"
RUNBOOKS = ROOT / "docs/operations.md"
TOOLS = ROOT / ".tools"
VENV_BIN = TOOLS / "venv" / "bin"

SERVICE = "cardlookup.v1.CardLookupService"
ADMIN_SERVICE = "cardlookup.admin.v1.AdminService"
# The issuer the live run's ConfigMap update writes, and its card tester's x-client-id.
NEW_ISSUER = "RELOADED BY CHECK-DEPLOY"
CARD_TESTER = "check-deploy-card-tester"


def missing(tool: str) -> None:
    """A tool is missing: a failure under CI, a skip (with the reason) elsewhere."""
    message = f"{tool} is missing: scripts/check-deploy.sh installs it"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(message + " (CI is set: a missing tool fails)")
    pytest.skip(message)


def find(name: str) -> str | None:
    """An executable in .tools/venv/bin, beside this Python, or on PATH."""
    path = os.pathsep.join([str(VENV_BIN), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which(name, path=path)


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    """A command's exit status and its output (stdout and stderr together)."""
    return subprocess.run(
        [str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )


class Grpcurl:
    """grpcurl against one server; each call returns grpcurl's output whatever its exit status."""

    def __init__(self, path: str, tls: list[str] | None = None):
        self.path = path
        self.tls = tls if tls is not None else ["-plaintext"]

    def __call__(self, address: str, *args: str, data: dict | None = None, headers=(), tls=None) -> str:
        command = [self.path, *(self.tls if tls is None else tls)]
        for h in headers:
            command += ["-H", h]
        if data is not None:
            command += ["-d", json.dumps(data)]
        return run([*command, address, *args], timeout=60).stdout


def lookup(grpcurl: Grpcurl, server: card_lookup_process.Server, number: str) -> str:
    return grpcurl(server.address, f"{SERVICE}/LookupBin", data={"number": number})


def version_of(answer: str) -> str:
    """The datasetVersion of a grpcurl answer, or ''."""
    m = re.search(r'"datasetVersion": "([^"]*)"', answer)
    return m[1] if m else ""


def scrape(server: card_lookup_process.Server) -> str:
    """The live /metrics of `server`."""
    with urllib.request.urlopen(server.metrics_url, timeout=5) as response:
        return response.read().decode()


def has_series(server: card_lookup_process.Server, pattern: str) -> bool:
    return re.search(pattern, scrape(server), re.M) is not None


def wait_until(seconds: float, condition) -> bool:
    """True as soon as `condition()` is, False after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
