"""Every metric the Prometheus rules and the Grafana dashboard use is on the live /metrics of
the binary run with the Deployment's arguments, with the labels the queries use; there is no
list of metrics still to come. (Two series exist only under conditions, which the live run
meets before it scrapes: cardlookup_requests_rate_limited_total for configured rate-limit
classes, cardlookup_data_reloads_total from the first reload. The cardlookup_quota_* metrics
exist only with --quota: live_metrics adds the /metrics of the quotas component's replica, run
against its Redis. The cardlookup_audit_* metrics exist only with --audit-dir: live_metrics adds
the /metrics of the audit-trail component's replica. The cardlookup_tls_* metrics exist only
under TLS: test_tls.py checks them on the TLS example's live /metrics.)"""

import pytest
import yaml

from promql_labels import TLS_ONLY, Analysis, parse_exposition
from support import DASHBOARD, KEDA_EXAMPLE, RULES


@pytest.fixture(scope="module")
def analysis(promql_parser, live_metrics, scrape_job) -> Analysis:
    scraped = parse_exposition(live_metrics)
    assert scraped, "the live /metrics is empty"
    analysis = Analysis(promql_parser, scraped, scrape_job)
    analysis.rules(RULES)
    analysis.dashboard(DASHBOARD)
    return analysis


def test_every_metric_used_is_on_live_metrics(analysis):
    """Each raw metric a rule or a panel uses is on /metrics (a renamed or dropped metric
    would leave an alert that never fires or an empty panel)."""
    missing = []
    for metric in sorted(analysis.used):
        places = sorted(analysis.used[metric])
        desc = places[0] + (f" and {len(places) - 1} more" if len(places) > 1 else "")
        if metric.startswith(TLS_ONLY):
            print(f"{metric} exists under TLS only: test_tls.py checks it")
        elif metric in analysis.scraped:
            shown = sorted(analysis.scraped[metric])
            print(f"/metrics has {metric}" + (f" {{{', '.join(shown)}}}" if shown else "") + f" (used by {desc})")
        else:
            missing.append(f"{metric} (used by {desc})")
    assert analysis.used, "the rules and the dashboard use no metric"
    assert not missing, "not on /metrics: " + "; ".join(missing)


@pytest.mark.parametrize("kind", ["rule", "dashboard"])
def test_queries_use_only_labels_their_series_carry(kind, analysis):
    """Each selector, by (...), on (...), group_left/right and label_values names a label the
    series carry (grpc_method, grpc_code, version, le, ...; job, namespace, pod from the
    scrape), grpc_code values are gRPC code names, and job= is the scraped job."""
    results = analysis.rule_results if kind == "rule" else analysis.dash_results
    bad = [f"{where}: " + "; ".join(problems) for where, problems in results if problems]
    assert results
    assert not bad, "\n".join(bad)


def test_keda_example_query_uses_series_the_service_exports(promql_parser, live_metrics, scrape_job):
    """The example's Prometheus query parses, and uses only metrics and labels on the live
    /metrics (job and namespace from the scrape); its threshold is a number."""
    triggers = [t for t in yaml.safe_load(KEDA_EXAMPLE.read_text())["spec"]["triggers"] if t["type"] == "prometheus"]
    assert triggers
    analysis = Analysis(promql_parser, parse_exposition(live_metrics), scrape_job)
    for trigger in triggers:
        assert float(trigger["metadata"]["threshold"]) > 0
        analysis.check(trigger["metadata"]["query"], "the KEDA trigger", analysis.rule_results)
    problems = [p for _, found in analysis.rule_results for p in found]
    problems += [f"{m} is not on /metrics" for m in analysis.used if m not in analysis.scraped]
    assert analysis.used and not problems, problems
