"""The Grafana dashboards in dashboards/: well-formed for Grafana 11 (schemaVersion >= 39), bound to a
Prometheus data source only through the `datasource` variable, and querying only what llm-exec
exports, with the labels it exports. The last test runs every query on a real Prometheus that
scrapes `llm-exec metrics --serve` after real executor calls against the emulator: each one must
parse, and each panel must show data.

No Grafana server is available here (neither Debian nor PyPI ships one), so the import itself is
not exercised; the checks below cover what an import would reject or silently break.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, emulator_env, run_executor, subprocess_env

DASHBOARD_DIR = REPO_ROOT / "dashboards"
DASHBOARDS = sorted(DASHBOARD_DIR.glob("*.json"))
EXPECTED = {"llm-exec-cost": "Cost", "llm-exec-performance": "Performance", "llm-exec-errors": "Errors"}
# The metrics issue 11 fixes; each must be on some dashboard.
REQUIRED_METRICS = ("gen_ai_client_token_usage", "gen_ai_client_operation_duration_seconds", "llm_exec_cost_usd_total",
                    "llm_exec_requests_total", "llm_exec_retries_total", "llm_exec_circuit_open")
# Grafana's own variables: https://grafana.com/docs/grafana/latest/dashboards/variables/add-template-variables/
GRAFANA_BUILTINS = {"__interval", "__interval_ms", "__rate_interval", "__range", "__range_s", "__range_ms",
                    "__from", "__to", "__dashboard", "__org", "__user", "__name", "timeFilter", "__all"}

# -- a PromQL lexer, enough to tell metric names from functions, keywords and label names ------------



def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


FUNCTIONS = _words("""
abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp clamp_max
clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg delta deriv
double_exponential_smoothing exp floor histogram_avg histogram_count histogram_fraction histogram_quantile
histogram_stddev histogram_stdvar histogram_sum holt_winters hour idelta increase info irate label_join
label_replace last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute month pi
predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh sort
sort_by_label sort_by_label_desc sort_desc sqrt stddev_over_time stdvar_over_time sum_over_time tan tanh
time timestamp vector year start end
""")
AGGREGATIONS = _words("sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio")
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"offset", "bool", "and", "or", "unless", "atan2", "inf", "nan"})
RANGE_FUNCTIONS = frozenset({"rate", "irate", "increase", "delta", "idelta", "resets", "changes", "deriv",
                             "predict_linear"}) | {f for f in FUNCTIONS if f.endswith("_over_time")}

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<variable>\$\{[^}]+\}|\$[A-Za-z_]\w*|\[\[[^\]]+\]\])
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+(?![\w.]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][\w:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^=<>(){}\[\],@])
""", re.VERBOSE)


_VARIABLE = re.compile(r"\$\{[^}]+\}|\$[A-Za-z_]\w*|\[\[[^\]]+\]\]")


class PromQLError(ValueError):
    pass


@dataclass
class Selector:
    metric: str
    labels: list[str] = field(default_factory=list)  # label names in its {} matchers
    range_vector: bool = False  # followed by [duration]
    functions: list[str] = field(default_factory=list)  # enclosing calls, innermost last


@dataclass
class Parsed:
    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)  # labels in by/without/on/ignoring/group_x (...)
    functions: set[str] = field(default_factory=set)
    variables: set[str] = field(default_factory=set)


def tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise PromQLError(f"cannot read {expr[pos:pos + 20]!r} in {expr!r}")
        kind = match.lastgroup or ""
        if kind not in ("space", "comment"):
            out.append((kind, match.group()))
        pos = match.end()
    return out


def _variable_name(text: str) -> str:
    name = text.strip("${}[]")
    return name.split(":")[0].split(".")[0]  # ${var:regex}, ${var.field}


def parse_promql(expr: str) -> Parsed:
    """Metric selectors (with their matcher labels and whether a range follows), grouping labels,
    functions and Grafana variables of one PromQL expression. Raises PromQLError on an unknown
    function or unbalanced brackets: a typo there would only show as an error panel in Grafana."""
    toks = tokens(expr)
    # Variables anywhere, in matcher strings and ranges too (the walk below skips those).
    parsed = Parsed(variables={_variable_name(v) for v in _VARIABLE.findall(expr)})
    calls: list[str | None] = []  # the call each open "(" belongs to (None: plain parentheses)
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ("", "")
        if kind == "variable":
            parsed.variables.add(_variable_name(text))
        elif kind == "ident" and text in GROUPING:
            if nxt[1] == "(":
                close = _matching(toks, i + 1, "(", ")")
                parsed.grouping |= {t for k, t in toks[i + 2:close] if k == "ident"}
                i = close
        elif kind == "ident" and text.lower() in KEYWORDS and text not in FUNCTIONS:
            pass
        elif kind == "ident" and text in AGGREGATIONS and nxt[1] in ("by", "without"):
            # sum by (le) (...): the grouping comes first, then the aggregation's own "("
            if i + 2 >= len(toks) or toks[i + 2][1] != "(":
                raise PromQLError(f"{text} {nxt[1]} without its labels in {expr!r}")
            close = _matching(toks, i + 2, "(", ")")
            parsed.grouping |= {t for k, t in toks[i + 3:close] if k == "ident"}
            if close + 1 >= len(toks) or toks[close + 1][1] != "(":
                raise PromQLError(f"{text} {nxt[1]} (...) without an argument in {expr!r}")
            parsed.functions.add(text)
            calls.append(text)
            i = close + 1
        elif kind == "ident" and nxt[1] == "(":
            if text not in FUNCTIONS and text not in AGGREGATIONS:
                raise PromQLError(f"unknown function {text!r} in {expr!r}")
            parsed.functions.add(text)
            calls.append(text)
            i += 1  # the "(" is consumed here
        elif kind == "ident" or (kind == "op" and text == "{"):
            selector = Selector("" if text == "{" else text, functions=[c for c in calls if c])
            j = i if text == "{" else i + 1
            if j < len(toks) and toks[j][1] == "{":
                close = _matching(toks, j, "{", "}")
                inner = toks[j + 1:close]
                for n, (k, t) in enumerate(inner):
                    if k == "ident" and n + 1 < len(inner) and inner[n + 1][1] in ("=", "!=", "=~", "!~"):
                        if t == "__name__" and inner[n + 1][1] == "=" and n + 2 < len(inner):
                            selector.metric = inner[n + 2][1].strip("\"'`")
                        else:
                            selector.labels.append(t)
                j = close + 1
            if j < len(toks) and toks[j][1] == "[":
                selector.range_vector = True
                j = _matching(toks, j, "[", "]") + 1
            if not selector.metric:
                raise PromQLError(f"a selector without a metric name in {expr!r}")
            parsed.selectors.append(selector)
            i = j - 1
        elif kind == "op" and text == "(":
            calls.append(None)
        elif kind == "op" and text == ")":
            if not calls:
                raise PromQLError(f"unbalanced ) in {expr!r}")
            calls.pop()
        elif kind == "op" and text == "[":  # a subquery's range, after a ")"
            i = _matching(toks, i, "[", "]")
        elif kind == "op" and text in "]}":
            raise PromQLError(f"unbalanced {text} in {expr!r}")
        i += 1
    if calls:
        raise PromQLError(f"unclosed ( in {expr!r}")
    return parsed


def _matching(toks: list[tuple[str, str]], start: int, opening: str, closing: str) -> int:
    depth = 0
    for n in range(start, len(toks)):
        if toks[n][1] == opening:
            depth += 1
        elif toks[n][1] == closing:
            depth -= 1
            if depth == 0:
                return n
    raise PromQLError(f"unclosed {opening} in {' '.join(t for _, t in toks)!r}")


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>[A-Za-z_]\w*)\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<expr>.+)\)\s*$", re.S)


def variable_promql(query: str) -> tuple[str | None, str | None]:
    """(PromQL, label) of a Prometheus variable query: label_values(selector, label) or
    query_result(expr); (None, None) for label_names() / metrics() / a bare label_values(label)."""
    if match := _LABEL_VALUES.match(query):
        return match["selector"], match["label"]
    if match := _QUERY_RESULT.match(query):
        return match["expr"], None
    return None, None


# -- the dashboards ---------------------------------------------------------------------------------


@cache
def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


@dataclass
class Query:
    where: str
    expr: str
    label: str | None = None  # a variable's label_values label


def queries(dashboard: dict[str, Any]) -> Iterator[Query]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield Query(f"panel {panel.get('title')!r} target {target.get('refId')}", target["expr"])
    for variable in dashboard["templating"]["list"]:
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        expr, label = variable_promql(text)
        if expr:
            yield Query(f"variable {variable['name']!r}", expr, label)


def exported_series() -> dict[str, tuple[str, str]]:
    """Series name PromQL can select -> (metric as llm-exec exports it, its type)."""
    from llm_exec.telemetry.metrics import EXPORTED_METRICS

    out: dict[str, tuple[str, str]] = {}
    for name, kind in EXPORTED_METRICS.items():
        if kind == "histogram":
            out.update({f"{name}{suffix}": (name, kind) for suffix in ("_bucket", "_sum", "_count")})
        elif kind == "summary":
            out.update({f"{name}{suffix}": (name, kind) for suffix in ("", "_sum", "_count")})
        elif kind == "counter":
            out[name if name.endswith("_total") else f"{name}_total"] = (name, kind)
        else:
            out[name] = (name, kind)
    return out


def datasource_refs(node: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """Every "datasource" value anywhere in the dashboard, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield path, value
            yield from datasource_refs(value, f"{path}.{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from datasource_refs(value, f"{path}[{n}]")


ids = [path.stem for path in DASHBOARDS]


def test_the_three_dashboards_are_there() -> None:
    found = {load(path)["uid"]: load(path)["title"] for path in DASHBOARDS}
    assert set(EXPECTED) <= set(found), found
    for uid, word in EXPECTED.items():
        assert word in found[uid]


@pytest.mark.parametrize("path", DASHBOARDS, ids=ids)
def test_dashboard_is_grafana_11_json_with_a_prometheus_datasource_variable(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["schemaVersion"] >= 39
    assert dashboard.get("id") is None  # an id from another Grafana would overwrite its dashboard
    assert dashboard["uid"] and dashboard["title"]
    (variable,) = [v for v in dashboard["templating"]["list"] if v.get("type") == "datasource"]
    assert (variable["name"], variable["query"]) == ("datasource", "prometheus")
    assert not variable.get("current"), "a saved current value would be another Grafana's data source"


@pytest.mark.parametrize("path", DASHBOARDS, ids=ids)
def test_no_datasource_uid_is_hard_coded(path: Path) -> None:
    dashboard = load(path)
    inputs = {f"${{{i['name']}}}" for i in dashboard.get("__inputs", []) if i.get("type") == "datasource"}
    allowed = {"${datasource}", "$datasource"} | inputs
    refs = list(datasource_refs(dashboard))
    assert refs
    for where, ref in refs:
        assert isinstance(ref, dict), f"{where}: {ref!r} names a data source instead of the variable"
        assert ref.get("type") == "prometheus" and ref.get("uid") in allowed, f"{where}: {ref}"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel.get("datasource") == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource") == panel["datasource"], (panel["title"], target)


@pytest.mark.parametrize("path", DASHBOARDS, ids=ids)
def test_every_metric_queried_is_one_llm_exec_exports(path: Path) -> None:
    series = exported_series()
    problems = []
    for query in queries(load(path)):
        for selector in parse_promql(query.expr).selectors:
            if selector.metric not in series:
                problems.append(f"{query.where}: {selector.metric} is not exported ({query.expr})")
    assert not problems, "\n".join(problems)


def test_every_required_metric_is_on_a_dashboard() -> None:
    used = {series for path in DASHBOARDS for query in queries(load(path))
            for series in (s.metric for s in parse_promql(query.expr).selectors)}
    exported = exported_series()
    shown = {exported[name][0] for name in used if name in exported}
    assert set(REQUIRED_METRICS) - shown == set()


@pytest.mark.parametrize("path", DASHBOARDS, ids=ids)
def test_counters_are_rated_and_histograms_read_with_histogram_quantile(path: Path) -> None:
    series = exported_series()
    problems = []
    for query in queries(load(path)):
        if query.label is not None:
            continue  # label_values reads labels, not values
        parsed = parse_promql(query.expr)
        for selector in parsed.selectors:
            kind = series.get(selector.metric, ("", ""))[1]
            if kind in ("counter", "histogram") and not (selector.range_vector and selector.functions
                                                         and selector.functions[-1] in RANGE_FUNCTIONS):
                problems.append(f"{query.where}: {selector.metric} is a {kind}: rate() or increase() it")
            if kind == "gauge" and set(selector.functions) & {"rate", "irate", "increase"}:
                problems.append(f"{query.where}: {selector.metric} is a gauge: rate() means nothing")
            if selector.metric.endswith("_bucket") and "histogram_quantile" not in selector.functions:
                problems.append(f"{query.where}: {selector.metric} outside histogram_quantile")
        if "histogram_quantile" in parsed.functions and "le" not in parsed.grouping:
            problems.append(f"{query.where}: histogram_quantile needs the buckets summed by (le, ...)")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", DASHBOARDS, ids=ids)
def test_every_variable_used_is_defined(path: Path) -> None:
    dashboard = load(path)
    defined = {v["name"] for v in dashboard["templating"]["list"]} | GRAFANA_BUILTINS
    problems = [f"{q.where}: ${name} is not a variable of the dashboard"
                for q in queries(dashboard) for name in parse_promql(q.expr).variables - defined]
    assert not problems, "\n".join(problems)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert variable.get("includeAll") and variable.get("allValue") == ".*", (
                f"{variable['name']}: All must match an empty label too (tasks without an agent)")


@pytest.mark.parametrize("path", DASHBOARDS, ids=ids)
def test_layout_panels_fit_the_grid_and_do_not_overlap(path: Path) -> None:
    dashboard = load(path)
    cells: dict[tuple[int, int], str] = {}
    seen_ids = set()
    for panel in panels(dashboard):
        assert panel["id"] not in seen_ids, f"panel id {panel['id']} twice"
        seen_ids.add(panel["id"])
        assert panel.get("title"), panel
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] >= 1 and pos["x"] + pos["w"] <= 24, (panel["title"], pos)
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
        if panel["type"] != "row":
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert ref_ids and len(ref_ids) == len(set(ref_ids)), panel["title"]
            assert panel.get("description"), f"{panel['title']!r}: say what the panel shows"


# -- the PromQL lexer itself -------------------------------------------------------------------------


def _metrics(expr: str) -> list[str]:
    return [s.metric for s in parse_promql(expr).selectors]


def test_lexer_tells_metrics_from_functions_keywords_labels_and_variables() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, gen_ai_request_model) (rate(foo_bucket{a=~"$x", b!="by(c)"}'
            '[$__rate_interval] offset 1h30m))) / on (model) group_left (agent) bar_total > bool 0.5e3 '
            'or vector(0) unless {__name__="baz", le="+Inf"} and sum(qux) without (inf) * -Inf')
    parsed = parse_promql(expr)
    assert _metrics(expr) == ["foo_bucket", "bar_total", "baz", "qux"]
    foo = parsed.selectors[0]
    assert foo.labels == ["a", "b"] and foo.range_vector and foo.functions == ["histogram_quantile", "sum", "rate"]
    assert not parsed.selectors[1].range_vector
    assert parsed.grouping == {"le", "gen_ai_request_model", "model", "agent", "inf"}
    assert parsed.variables == {"x", "__rate_interval"}


def test_lexer_reads_subqueries_label_replace_and_grafana_variable_forms() -> None:
    expr = ('max_over_time(rate(a_total[5m])[1h:1m]) + label_replace(b, "dst", "$1", "src", "(.*)") '
            '* ${budget} / [[old]] + c:recorded:rate5m @ end()')
    assert _metrics(expr) == ["a_total", "b", "c:recorded:rate5m"]
    assert parse_promql(expr).variables == {"budget", "old"}
    assert variable_promql('label_values(llm_exec_requests_total{provider=~"$provider"}, model)') == (
        'llm_exec_requests_total{provider=~"$provider"}', "model")
    assert variable_promql("label_values(provider)") == (None, "provider")
    assert variable_promql("query_result(topk(5, x))") == ("topk(5, x)", None)


@pytest.mark.parametrize("bad", ["rat(x[5m])", "sum(x", "x{a=\"b\"", "x[5m", "sum(x))", "{a=\"b\"}"])
def test_lexer_rejects_typos_grafana_would_only_show_as_an_error_panel(bad: str) -> None:
    with pytest.raises(PromQLError):
        parse_promql(bad)


# -- every query on a real Prometheus -------------------------------------------------------------------


def substitute(expr: str, dashboard: dict[str, Any]) -> str:
    """The query as Grafana sends it with the defaults: All is the allValue regex, a textbox its value."""
    values = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "__range_s": "3600"}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            values[variable["name"]] = variable["allValue"]
        elif variable["type"] in ("textbox", "constant", "custom"):
            values[variable["name"]] = str(variable["current"]["value"])

    def one(match: re.Match[str]) -> str:
        return values[_variable_name(match.group())]

    return _VARIABLE.sub(one, expr)


@pytest.mark.prometheus
@pytest.mark.timeout(240)
def test_every_query_runs_on_a_real_prometheus_and_every_panel_shows_data(tmp_path: Path) -> None:
    from llm_exec.emulator import Emulator
    from tests.telemetry.metrics_servers import MetricsEndpoint, Prometheus

    with Emulator() as emu:
        env = {**subprocess_env(), **emulator_env(emu.url), "LLM_EXEC_BREAKER_THRESHOLD": "2"}

        def call(executor: str, agent: str, **spec: Any) -> None:
            run_executor(executor, {"agent": agent, "prompt": "how many words is this", **spec}, url=emu.url,
                         env={"LLM_EXEC_BREAKER_THRESHOLD": "2"})

        # Before Prometheus looks, so that increase() over the range sees what follows: a counter
        # series Prometheus first sees at 1 has increased by nothing yet.
        call("gpt", "writer")
        call("llama", "local")
        emu.script([{"status": 500}])
        call("gpt", "writer", max_retries=0)  # server_error
        emu.script([{"status": 401}])
        call("gemini", "writer")  # authentication_error
        endpoint = MetricsEndpoint(env).start()
        prometheus = Prometheus(tmp_path, {"llm-exec": (f"127.0.0.1:{endpoint.port}", True)}).start()
        try:
            prometheus.wait_for("sum(llm_exec_requests_total)", 4)
            time.sleep(2)  # a few scrapes of the first values
            call("gpt", "writer", max_tokens=50)
            call("claude", "reviewer")
            call("gemini", "writer")
            emu.script([{"status": 500}])
            call("gpt", "writer", task_id="retried")  # 500, then a success: attempts 2
            emu.script([{"status": 500, "times": 2}])
            call("claude", "reviewer", max_retries=1)  # two failures in a row open its circuit
            emu.script([{"status": 401}])
            call("gemini", "writer")  # authentication_error
            prometheus.wait_for("sum(llm_exec_requests_total)", 10)
            time.sleep(3)  # rate() needs two samples after the change
            problems = _run_dashboards(prometheus, endpoint.scrape())
            assert prometheus.value('count(max by (provider, model, breaker_key) (llm_exec_circuit_open) > 0) '
                                    'or vector(0)') == 1
        finally:
            prometheus.stop()
            endpoint.stop()
    assert not problems, "\n".join(problems)


def _run_dashboards(prometheus: Any, exposed: list[tuple[str, dict[str, str], float]]) -> list[str]:
    """Every problem found: a query Prometheus rejects or warns about, a label llm-exec does not
    export, a panel with no data."""
    from tests.telemetry.metrics_servers import http_get

    labels: dict[str, set[str]] = {}
    for name, have, _ in exposed:
        labels.setdefault(name, set()).update(have)
    problems: list[str] = []
    for path in DASHBOARDS:
        dashboard = load(path)
        for query in queries(dashboard):
            parsed = parse_promql(query.expr)
            known = set().union(*(labels.get(s.metric, set()) for s in parsed.selectors))
            for selector in parsed.selectors:
                missing = set(selector.labels) - labels.get(selector.metric, set())
                if missing:
                    problems.append(f"{path.name} {query.where}: {selector.metric} has no label {sorted(missing)}")
            if query.label and query.label not in known:
                problems.append(f"{path.name} {query.where}: no label {query.label}")
            if parsed.grouping - known:
                problems.append(f"{path.name} {query.where}: groups by {sorted(parsed.grouping - known)}, "
                                f"which {', '.join(s.metric for s in parsed.selectors)} do not have")
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            rows = 0
            for target in panel["targets"]:
                promql = substitute(target["expr"], dashboard)
                status, body = http_get(f"{prometheus.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
                answer = json.loads(body)
                if status != 200 or answer.get("status") != "success":
                    problems.append(f"{path.name} {panel['title']!r} {target['refId']}: {answer.get('error')} "
                                    f"({promql})")
                    continue
                if answer.get("warnings") or answer.get("infos"):
                    problems.append(f"{path.name} {panel['title']!r}: {answer.get('warnings') or answer['infos']}")
                rows += len(answer["data"]["result"])
            if not rows:
                problems.append(f"{path.name} {panel['title']!r}: no data from {[t['expr'] for t in panel['targets']]}")
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                selector, label = variable_promql(variable["definition"])
                promql = f"count by ({label}) ({substitute(selector or '', dashboard)})"
                if not prometheus.query(promql):
                    problems.append(f"{path.name} variable {variable['name']!r}: no values ({promql})")
    return problems
