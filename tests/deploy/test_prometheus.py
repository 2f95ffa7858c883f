"""deploy/prometheus: promtool checks and runs the rules' unit tests; every alert has a
summary, a severity, a runbook section in docs/operations.md, and unit tests where it fires
and where it must not."""

import re

import pytest
import yaml

from support import RULE_TESTS, RULES, RUNBOOKS, run

ALERTS = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.fixture(scope="module")
def runbooks() -> str:
    return RUNBOOKS.read_text()


@pytest.fixture(scope="module")
def anchors(runbooks) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+\s+(.*)$", runbooks, re.M)}


@pytest.fixture(scope="module")
def rule_tests() -> tuple[set[str], set[str]]:
    """The alerts some unit test expects to fire, and those some unit test expects quiet."""
    fires, quiet = set(), set()
    for path in sorted(RULE_TESTS.glob("*.yml")):
        for t in yaml.safe_load(path.read_text()).get("tests", []):
            for a in t.get("alert_rule_test", []):
                (fires if a.get("exp_alerts") else quiet).add(a["alertname"])
    return fires, quiet


def test_promtool_check_rules(promtool):
    """The rules file is valid for Prometheus."""
    result = run([promtool, "check", "rules", RULES])
    assert result.returncode == 0, result.stdout


def test_promtool_test_rules(promtool):
    """The rules' unit tests pass."""
    result = run([promtool, "test", "rules", *sorted(RULE_TESTS.glob("*.yml"))])
    assert result.returncode == 0, result.stdout


def test_runbook_links_resolve(runbooks, anchors):
    """Every link of docs/operations.md to a section of itself resolves."""
    broken = sorted({a for a in re.findall(r"\]\(#([^)]+)\)", runbooks) if a not in anchors})
    assert not broken, "links to missing sections: " + ", ".join("#" + a for a in broken)


def test_there_are_alerts():
    assert ALERTS, f"no alerts in {RULES}"


@pytest.mark.parametrize("rule", ALERTS, ids=[r["alert"] for r in ALERTS])
def test_alert(rule, anchors, rule_tests):
    """An alert has a summary, a severity, a runbook_url that is a section of
    docs/operations.md, a unit test where it fires and one where it must not."""
    fires, quiet = rule_tests
    name, ann = rule["alert"], rule.get("annotations", {})
    problems = []
    if not ann.get("summary"):
        problems.append("no summary annotation")
    url = ann.get("runbook_url", "")
    m = re.fullmatch(r"docs/operations\.md#(.+)", url)
    if not m:
        problems.append(f"runbook_url {url!r} is not docs/operations.md#SECTION")
    elif m[1] not in anchors:
        problems.append(f"docs/operations.md has no section #{m[1]}")
    if not rule.get("labels", {}).get("severity"):
        problems.append("no severity label")
    if name not in fires:
        problems.append("no unit test where it fires")
    if name not in quiet:
        problems.append("no unit test where it must not fire")
    assert not problems, f"alert {name}: " + "; ".join(problems)
