"""deploy/grafana: the dashboard is JSON, every panel has a query, and every query (panels and
template variables, Grafana's variables filled in) is valid PromQL; it is readable at 50
replicas in several clusters (a cluster variable, no line per replica) and shows the SLOs'
error budgets and the connections per replica."""

import json

from promql_labels import Analysis, fill, panels, panels_without_query
from support import DASHBOARD, RULES


def test_dashboard_is_valid_json():
    """Grafana imports the file: it is JSON."""
    json.loads(DASHBOARD.read_text())


def test_every_panel_has_a_query():
    """No panel (rows aside) is left without a query."""
    assert not panels_without_query(DASHBOARD)


def test_every_query_parses_as_promql(promql_parser):
    """Every panel query and variable query parses with promql-parser. ($job is filled in
    with the Service's name; test_live_metrics.py checks the labels against the live server.)"""
    analysis = Analysis(promql_parser, None, "card-lookup")
    analysis.dashboard(DASHBOARD)
    invalid = [(where, p) for where, problems in analysis.dash_results for p in problems if "not valid PromQL" in p]
    assert analysis.n_targets > 0, "no panel queries"
    assert not invalid, invalid


def _queries():
    dash = json.loads(DASHBOARD.read_text())
    return dash, [(p.get("title"), t["expr"]) for p in panels(dash.get("panels", [])) for t in p.get("targets", [])]


def test_every_query_is_within_the_selected_cluster():
    """A cluster variable (All matches series without the label too), and every query of a
    raw metric selects cluster=~"$cluster": several clusters in one Prometheus are never
    mixed into a panel unless All is chosen."""
    dash, queries = _queries()
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert "cluster" in variables, list(variables)
    assert variables["cluster"].get("includeAll") and variables["cluster"].get("allValue") == ".*"
    unscoped = [(title, expr) for title, expr in queries if '{job="$job"' in expr or "cluster" not in expr]
    assert not unscoped, unscoped


class _EveryMetric(dict):
    """A scrape in which every metric exists with no labels of its own: a query's result then
    carries exactly the target's labels it keeps (pod among them)."""

    def __contains__(self, name) -> bool:
        return True

    def __missing__(self, name) -> set[str]:
        return set()


def test_no_panel_draws_a_line_per_replica(promql_parser):
    """Readable at 50 replicas: a query's result carries no pod label (a line a pod) unless it
    is a top-k; fleets are shown as totals, spreads (min, median, max) and top 5s."""
    _, queries = _queries()
    analysis = Analysis(promql_parser, _EveryMetric(), "card-lookup")
    analysis.rules(RULES)  # the recorded series the SLO panels read
    per_pod = []
    for title, expr in queries:
        ast = promql_parser.parse(fill(expr, "card-lookup"))
        if type(ast).__name__ == "AggregateExpr" and str(ast.op) in ("topk", "bottomk"):
            continue
        if "pod" in (analysis.labels_of(ast, title, []) or set()):
            per_pod.append((title, expr))
    assert not per_pod, per_pod


def test_slo_budget_and_connection_panels_exist():
    """The error budget left of both SLOs, their burn rates and the connections per replica
    have panels."""
    _, queries = _queries()
    exprs = " ".join(expr for _, expr in queries)
    for needed in (
        "cardlookup_slo_availability_errors:ratio_rate30d",
        "cardlookup_slo_latency_errors:ratio_rate30d",
        "cardlookup_slo_availability_errors:ratio_rate1h",
        "cardlookup_connections_open",
        "cardlookup_connections_closed_for_age_total",
    ):
        assert needed in exprs, f"no panel queries {needed}"
