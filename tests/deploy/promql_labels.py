"""The queries of the Prometheus rules and the Grafana dashboard, parsed with promql-parser: the
raw metrics each uses, and the labels each expression's result carries, so that a selector,
`by (...)`, `on (...)` or `label_values` naming a label its series lack is found.

`Analysis(scraped, job)` walks the rules (recording rules first, so that alerts see what they
record) and the dashboard; `scraped` is the live /metrics (sample name -> label names), or None
to parse only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import yaml

# Labels Prometheus and the Prometheus Operator add to every scraped series; not on /metrics.
# `cluster` is the one a multi-cluster set-up adds (an external label seen by Thanos or Mimir,
# or a relabelling), which the rules and the dashboard keep through their aggregations.
TARGET = {"job", "instance", "namespace", "pod", "service", "endpoint", "container", "cluster"}
# The prefix of the metrics a server exports only with TLS on its gRPC port.
TLS_ONLY = "cardlookup_tls_"
GRPC_CODES = {
    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
    "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
    "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
}  # fmt: skip


class Scalar(frozenset):
    """The 'labels' of a scalar: none, and it matches anything in a binary expression."""


def parse_exposition(text: str) -> dict[str, set[str]]:
    """The live exposition: sample name -> label names."""
    scraped: dict[str, set[str]] = {}
    for line in text.splitlines(keepends=True):
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s", line)
        if m:
            scraped.setdefault(m[1], set()).update(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m[3] or ""))
    return scraped


def fill(expr: str, job: str) -> str:
    """A dashboard query with Grafana's variables filled in."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    expr = re.sub(r"\$\{?job\}?", job, expr)
    return re.sub(r"\$\{?(\w+)\}?", "x", expr)


def panels(ps: list[dict]):
    """Every panel of a dashboard, rows' nested panels included."""
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))


@dataclass
class Analysis:
    pp: object  # the promql_parser module
    scraped: dict[str, set[str]] | None
    job: str
    used: dict[str, set[str]] = field(default_factory=dict)  # raw metric -> where used
    recorded: dict[str, set[str]] = field(default_factory=dict)  # recorded metric -> labels
    rule_results: list[tuple[str, list[str]]] = field(default_factory=list)
    dash_results: list[tuple[str, list[str]]] = field(default_factory=list)
    n_targets: int = 0

    def selector_name(self, vs):
        if vs.name:
            return vs.name
        for m in vs.matchers.matchers:
            if m.name == "__name__":
                return m.value
        return None

    def labels_of(self, node, where, problems):
        """The label names an expression's result carries; records problems on the way."""
        pp = self.pp
        t = type(node).__name__
        if t == "VectorSelector":
            name = self.selector_name(node)
            if name in self.recorded:
                labels = self.recorded[name]
            elif name == "up":
                labels = set(TARGET)
            else:
                self.used.setdefault(name, set()).add(where)
                if self.scraped is not None and name in self.scraped:
                    labels = self.scraped[name] | TARGET
                else:
                    return None  # missing (or not scraped): reported per metric
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    continue
                if m.name not in labels:
                    problems.append(f"{name} has no label {m.name}")
                if m.name == "grpc_code":
                    bad = [v for v in re.split(r"\|", m.value) if v and v not in GRPC_CODES]
                    if bad:
                        problems.append(f"grpc_code value(s) {bad} are not gRPC code names (OK, InvalidArgument, ...)")
                if m.name == "job" and m.value not in (self.job, "$job"):
                    problems.append(f'job="{m.value}" is not the scraped job "{self.job}"')
            return set(labels)
        if t == "MatrixSelector":
            return self.labels_of(node.vector_selector, where, problems)
        if t in ("ParenExpr", "UnaryExpr", "SubqueryExpr"):
            return self.labels_of(node.expr, where, problems)
        if t in ("NumberLiteral", "StringLiteral"):
            return Scalar()
        if t == "Call":
            fn = node.func.name
            args = [self.labels_of(a, where, problems) for a in node.args]
            if fn == "histogram_quantile":
                inner = args[1]
                if inner is None:
                    return None
                if "le" not in inner:
                    problems.append("histogram_quantile over a series without le")
                return inner - {"le"}
            if fn in ("absent", "absent_over_time"):
                arg = node.args[0]
                vs = arg.vector_selector if type(arg).__name__ == "MatrixSelector" else arg
                if type(vs).__name__ != "VectorSelector":
                    return set()
                return {m.name for m in vs.matchers.matchers if m.op == pp.MatchOp.Equal and m.name != "__name__"}
            if fn in ("vector", "time", "scalar", "pi"):
                return Scalar() if fn != "vector" else set()
            if fn in ("label_replace", "label_join"):
                base = args[0]
                new = node.args[1].val if hasattr(node.args[1], "val") else str(node.args[1]).strip('"')
                return None if base is None else base | {new}
            for a in args:
                if a is not None and not isinstance(a, Scalar):
                    return a
            return None if any(a is None for a in args) else Scalar()
        if t == "AggregateExpr":
            inner = self.labels_of(node.expr, where, problems)
            if node.param is not None:
                self.labels_of(node.param, where, problems)
            op = str(node.op)
            if inner is None:
                return None
            mod = node.modifier
            if op in ("topk", "bottomk", "limitk", "limit_ratio"):
                return inner
            if mod is None:
                return set()
            if mod.type == pp.AggModifierType.By:
                for label in mod.labels:
                    if label not in inner:
                        problems.append(f"{op} by ({label}): the series have no label {label}")
                return set(mod.labels)
            return inner - set(mod.labels)
        if t == "BinaryExpr":
            lhs = self.labels_of(node.lhs, where, problems)
            rhs = self.labels_of(node.rhs, where, problems)
            if lhs is None or rhs is None:
                return None
            if isinstance(lhs, Scalar):
                return rhs
            if isinstance(rhs, Scalar):
                return lhs
            mod = node.modifier
            matching = mod.matching if mod is not None else None
            if matching is not None and matching.type == pp.LabelModifierType.Include:
                for label in matching.labels:
                    for side, labels in (("left", lhs), ("right", rhs)):
                        if label not in labels:
                            problems.append(f"on ({label}): the {side} side has no label {label}")
            card = str(mod.card) if mod is not None else ""
            extra = set(mod.group_labels or []) if mod is not None else set()
            if "ManyToOne" in card:
                for label in extra - rhs:
                    problems.append(f"group_left ({label}): the right side has no label {label}")
                return lhs | extra
            if "OneToMany" in card:
                for label in extra - lhs:
                    problems.append(f"group_right ({label}): the left side has no label {label}")
                return rhs | extra
            return lhs
        return None

    def check(self, expr, where, sink):
        """Parses `expr`, appends (where, problems) to `sink`; returns its labels."""
        problems: list[str] = []
        try:
            ast = self.pp.parse(expr)
        except Exception as e:  # the parser's own error type
            sink.append((where, [f"not valid PromQL: {e}"]))
            return None
        labels = self.labels_of(ast, where, problems)
        sink.append((where, problems))
        return labels

    def rules(self, rules_file) -> None:
        """The rules: recording rules first, in order, so alerts see what they record."""
        with open(rules_file) as f:
            groups = yaml.safe_load(f)["groups"]
        for g in groups:
            for r in g["rules"]:
                where = f"rule {r.get('record') or r.get('alert')}"
                labels = self.check(r["expr"], where, self.rule_results)
                if "record" in r:
                    self.recorded[r["record"]] = set(labels or set())

    def dashboard(self, dashboard_file) -> None:
        """Every target and every variable query, with Grafana's variables filled in."""
        with open(dashboard_file) as f:
            dash = json.load(f)
        for p in panels(dash.get("panels", [])):
            for t in p.get("targets", []):
                self.n_targets += 1
                self.check(
                    fill(t["expr"], self.job), f"panel {p.get('title')!r} query {t.get('refId')}", self.dash_results
                )
        for v in dash.get("templating", {}).get("list", []):
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q or "")
            if v.get("type") == "query" and m:
                sel_labels = self.check(fill(m[1], self.job), f"dashboard variable ${v['name']}", self.dash_results)
                if sel_labels is not None and m[2] not in sel_labels:
                    self.dash_results[-1][1].append(f"label_values(..., {m[2]}): no label {m[2]}")


def panels_without_query(dashboard_file) -> list[str]:
    """The titles of the panels (rows aside) that have no query."""
    with open(dashboard_file) as f:
        dash = json.load(f)
    return [
        f"panel {p.get('title')!r}"
        for p in panels(dash.get("panels", []))
        if p.get("type") != "row" and not p.get("targets")
    ]
