"""Usage-ledger summaries: calls, error rate, latency percentiles, tokens and cost per group."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

GROUPS = ("agent", "provider", "model", "day")


def _percentile(values: Sequence[float], fraction: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 4)
    # statistics.quantiles' "inclusive" method interpolates between observed values.
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return round(cuts[int(fraction * 100) - 1], 4)


def summarise(rows: Iterable[dict[str, Any]], by: Sequence[str] = ("agent", "model", "day")) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        day = (row.get("timestamp") or "")[:10]
        values = {**row, "day": day}
        groups[tuple(values.get(name) for name in by)].append(row)
    summary = []
    for key in sorted(groups, key=lambda k: tuple("" if v is None else str(v) for v in k)):
        members = groups[key]
        latencies = sorted(float(r["latency_seconds"]) for r in members if r.get("latency_seconds") is not None)
        errors = sum(1 for r in members if r.get("status") != "success")
        summary.append({
            **dict(zip(by, key, strict=True)),
            "calls": len(members),
            "errors": errors,
            "error_rate": round(errors / len(members), 4),
            "cached": sum(1 for r in members if r.get("cached")),
            "p50_latency_seconds": _percentile(latencies, 0.50),
            "p95_latency_seconds": _percentile(latencies, 0.95),
            "prompt_tokens": sum(r.get("prompt_tokens") or 0 for r in members),
            "completion_tokens": sum(r.get("completion_tokens") or 0 for r in members),
            **cost_summary(members),
        })
    return summary


def cost_summary(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The cost of the calls whose cost is known, and how many are not: a call the result priced
    as null (a model without a known price) is unknown, not free, and stays out of the sum.
    `cost_usd` is None when there are calls and none has a known cost."""
    costs = [row.get("cost_usd") for row in rows]
    known = [float(cost) for cost in costs if cost is not None]
    total = round(sum(known), 8) if known or not costs else None
    return {"cost_usd": total, "cost_unknown_calls": len(costs) - len(known)}


def _cost_cell(row: dict[str, Any]) -> str:
    unknown = row["cost_unknown_calls"]
    if row["cost_usd"] is None:
        return f"unknown ({unknown})" if unknown else ""
    return f"{row['cost_usd']} (+{unknown} unknown)" if unknown else str(row["cost_usd"])


def render_table(summary: list[dict[str, Any]], by: Sequence[str]) -> str:
    columns = [*by, "calls", "error_rate", "p50_latency_seconds", "p95_latency_seconds", "prompt_tokens",
               "completion_tokens", "cost_usd"]
    headers = [*by, "calls", "errors", "p50 s", "p95 s", "prompt tok", "completion tok", "cost $"]
    cells = [[(_cost_cell(row) if c == "cost_usd" else "" if row[c] is None else f"{row[c]:.1%}"
               if c == "error_rate" else str(row[c])) for c in columns] for row in summary]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)
