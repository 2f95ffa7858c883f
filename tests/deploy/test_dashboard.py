"""deploy/grafana: the dashboard is JSON, every panel has a query, and every query (panels and
template variables, Grafana's variables filled in) is valid PromQL."""

import json

from promql_labels import Analysis, panels_without_query
from support import DASHBOARD


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
