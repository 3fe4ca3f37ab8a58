"""Prometheus text exposition format 0.0.4: `Totals` written, and the textfile's own lines merged.

The executor writes the textfile and the Pushgateway body without prometheus_client: importing it
costs ~11 ms on top of an SDK (its exposition module pulls in http.server and wsgiref), a tenth of
a one-shot call. The text is byte for byte what prometheus_client.generate_latest writes for the
same values (label names sorted, its float formatting, its escaping): tests/telemetry hold that.

Merging needs no label parsing: a series is the text of its line before the value, which `render`
writes the same way for the same label values, and every sample of ours adds up line by line (a
counter, a histogram's _count and _sum, and its cumulative buckets too: the sum of cumulative
counts is the cumulative count of the sums); only a gauge's line takes the newer value. So merging
a file costs a split per line, whatever its labels hold.
"""

from __future__ import annotations

import math

from ._metrics_model import FAMILIES, Totals

# family name -> {series ("name{labels}"): value}, in file order
Lines = dict[str, dict[str, float]]


def go_float(value: float) -> str:
    """A float as Prometheus' Go clients and prometheus_client write it (floatToGoString)."""
    value = float(value)
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to exponents sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _labels(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in sorted(pairs)) + "}"


def lines(totals: Totals) -> Lines:
    """Every sample line of `totals`, by family."""
    out: Lines = {}
    for family in FAMILIES:
        series: dict[str, float] = {}
        for labels, value in totals.series(family):
            pairs = list(zip(family.labels, labels, strict=True))
            if family.kind != "histogram":
                series[f"{family.name}{_labels(pairs)}"] = value
                continue
            cumulative = 0.0
            for bound, count in zip((*family.buckets, math.inf), value[:-1], strict=True):
                cumulative += count
                series[f"{family.name}_bucket{_labels([*pairs, ('le', go_float(bound))])}"] = cumulative
            series[f"{family.name}_count{_labels(pairs)}"] = cumulative
            series[f"{family.name}_sum{_labels(pairs)}"] = value[-1]
        if series:
            out[family.name] = series
    return out


def text(families: Lines) -> str:
    """The exposition text: each family with a series, its HELP and TYPE lines first."""
    out: list[str] = []
    for family in FAMILIES:
        series = families.get(family.name)
        if not series:
            continue
        help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {family.name} {help_text}\n# TYPE {family.name} {family.kind}\n")
        out.extend(f"{key} {go_float(value)}\n" for key, value in series.items())
    return "".join(out)


def render(totals: Totals) -> str:
    return text(lines(totals))


# The family of each sample name we write.
_FAMILY_OF: dict[str, str] = {series: family.name for family in FAMILIES for series in family.series}
_GAUGES = frozenset(family.name for family in FAMILIES if family.kind == "gauge")


def read(content: str) -> Lines:
    """The sample lines of a file `text` wrote; ValueError for a line that is not one of ours."""
    families: Lines = {}
    for number, line in enumerate(content.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        family = _FAMILY_OF.get(key.partition("{")[0])
        if family is None or not key.endswith("}"):
            raise ValueError(f"line {number} is not a sample of ours: {line[:120]!r}")
        families.setdefault(family, {})[key] = float(value)
    return families


def merge(into: Lines, ours: Lines) -> None:
    """Add `ours` to `into`: every line adds up, a gauge's takes our value."""
    for family, series in ours.items():
        target = into.setdefault(family, {})
        if family in _GAUGES:
            target.update(series)
            continue
        for key, value in series.items():
            target[key] = target.get(key, 0.0) + value
