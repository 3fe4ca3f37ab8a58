"""What the HTML report shows, worked out from usage-ledger rows. Pure: no store, no HTML.

A ledger row is written by `runner.ledger_row`; rows from older versions, or edited by hand, may
lack fields or hold odd types, so every field is read defensively and a bad value counts as
missing rather than stopping the report.

A `cost_usd` of null means the cost is *unknown* (a model genai-prices does not know, a local
model, or a call that failed before any usage was reported): such calls are counted apart and
never added to a sum as 0, so a total never looks smaller than what was spent without saying so.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

# Days of an empty stretch filled in so the cost chart shows idle days as idle; a ledger spanning
# more than this keeps only the days that have calls, so the chart stays readable.
MAX_FILLED_DAYS = 400
TOP_TASKS = 10


def number(value: Any) -> float | None:
    """A finite number from a ledger field, else None (bools and NaN are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def text(value: Any) -> str | None:
    """A ledger field shown as text: None stays None (the page says "(none)")."""
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks of sorted `values` (numpy's default, and
    statistics.quantiles(method="inclusive"), the method `llm-exec stats` uses)."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def row_day(row: Mapping[str, Any]) -> str:
    """The UTC day of a row, from its ISO timestamp (as `llm-exec stats` groups), else from ts."""
    stamp = row.get("timestamp")
    if isinstance(stamp, str) and len(stamp) >= 10:
        try:
            return date.fromisoformat(stamp[:10]).isoformat()
        except ValueError:
            pass
    ts = number(row.get("ts"))
    if ts is not None:
        return datetime.fromtimestamp(ts, UTC).date().isoformat()
    return "unknown"


@dataclass
class CostCell:
    """Calls and spend of one group; the spend covers the priced calls only."""

    calls: int = 0
    priced_calls: int = 0
    cost_usd: float = 0.0

    @property
    def unknown_calls(self) -> int:
        return self.calls - self.priced_calls

    def add(self, cost: float | None) -> None:
        self.calls += 1
        if cost is not None:
            self.priced_calls += 1
            self.cost_usd += cost


@dataclass
class ModelLatency:
    provider: str | None
    model: str | None
    latencies: list[float]  # sorted, seconds
    calls: int = 0
    errors: int = 0
    retries: int = 0  # attempts beyond the first, summed

    def quantile(self, fraction: float) -> float | None:
        return percentile(self.latencies, fraction)

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass
class ExpensiveTask:
    task_id: str | None
    agent: str | None
    provider: str | None
    model: str | None
    timestamp: str | None
    status: str | None
    tokens: int | None
    latency_seconds: float | None
    cost_usd: float


@dataclass
class ReportData:
    generated_at: datetime
    since: float | None  # epoch seconds of the window's start; None: the whole ledger
    source: str  # the store's location
    calls: int = 0
    errors: int = 0  # status other than success (cancelled included)
    retried_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total: CostCell = field(default_factory=CostCell)
    unknown_unpriced: int = 0  # usage reported, no price for the model
    unknown_no_usage: int = 0  # failed before any usage was reported
    first_day: str | None = None
    last_day: str | None = None
    days: list[str] = field(default_factory=list)
    agents: list[str | None] = field(default_factory=list)  # by spend, highest first
    cost_by_day_agent: dict[tuple[str, str | None], CostCell] = field(default_factory=dict)
    cost_by_day: dict[str, CostCell] = field(default_factory=dict)
    cost_by_agent: dict[str | None, CostCell] = field(default_factory=dict)
    latency: list[ModelLatency] = field(default_factory=list)
    errors_by_type: list[tuple[str, int]] = field(default_factory=list)  # most frequent first
    errors_by_model: list[tuple[str | None, str | None, str, int]] = field(default_factory=list)
    top_tasks: list[ExpensiveTask] = field(default_factory=list)


def _sort_key(value: str | None) -> tuple[int, str]:
    return (1, "") if value is None else (0, value)


def _filled_days(days: Iterable[str]) -> list[str]:
    known = sorted(d for d in set(days) if d != "unknown")
    extra = ["unknown"] if "unknown" in days else []
    if not known:
        return extra
    first, last = date.fromisoformat(known[0]), date.fromisoformat(known[-1])
    span = (last - first).days + 1
    if span > MAX_FILLED_DAYS:
        return known + extra
    return [(first + timedelta(days=i)).isoformat() for i in range(span)] + extra


def build_report_data(rows: Iterable[Mapping[str, Any]], *, source: str, since: float | None = None,
                      now: float | None = None, top: int = TOP_TASKS) -> ReportData:
    data = ReportData(generated_at=datetime.fromtimestamp(time.time() if now is None else now, UTC),
                      since=since, source=source)
    by_day_agent: dict[tuple[str, str | None], CostCell] = defaultdict(CostCell)
    by_day: dict[str, CostCell] = defaultdict(CostCell)
    by_agent: dict[str | None, CostCell] = defaultdict(CostCell)
    models: dict[tuple[str | None, str | None], ModelLatency] = {}
    error_types: Counter[str] = Counter()
    error_models: Counter[tuple[str | None, str | None, str]] = Counter()
    priced: list[ExpensiveTask] = []

    for row in rows:
        cost = number(row.get("cost_usd"))
        status = text(row.get("status"))
        agent, provider, model = text(row.get("agent")), text(row.get("provider")), text(row.get("model"))
        day = row_day(row)
        data.calls += 1
        data.total.add(cost)
        by_day_agent[(day, agent)].add(cost)
        by_day[day].add(cost)
        by_agent[agent].add(cost)
        prompt, completion = number(row.get("prompt_tokens")), number(row.get("completion_tokens"))
        data.prompt_tokens += int(prompt or 0)
        data.completion_tokens += int(completion or 0)
        tokens = number(row.get("tokens_used"))
        if cost is None:
            if tokens is None and prompt is None and completion is None and status != "success":
                data.unknown_no_usage += 1
            else:
                data.unknown_unpriced += 1

        stats = models.setdefault((provider, model), ModelLatency(provider, model, []))
        stats.calls += 1
        latency = number(row.get("latency_seconds"))
        if latency is not None:
            stats.latencies.append(latency)
        attempts = number(row.get("attempts"))
        if attempts is not None and attempts > 1:
            stats.retries += int(attempts) - 1
            data.retried_calls += 1
        if status != "success":
            data.errors += 1
            stats.errors += 1
            kind = text(row.get("error_type")) or status or "unknown"
            error_types[kind] += 1
            error_models[(provider, model, kind)] += 1

        if cost is not None and cost > 0:  # a cached answer costs 0: not an "expensive task"
            priced.append(ExpensiveTask(
                task_id=text(row.get("task_id")), agent=agent, provider=provider, model=model,
                timestamp=text(row.get("timestamp")), status=status,
                tokens=int(tokens) if tokens is not None else None, latency_seconds=latency, cost_usd=cost))

    data.days = _filled_days(by_day)
    known_days = [d for d in data.days if d != "unknown"]
    data.first_day, data.last_day = (known_days[0], known_days[-1]) if known_days else (None, None)
    data.cost_by_day_agent = dict(by_day_agent)
    data.cost_by_day = {day: by_day.get(day, CostCell()) for day in data.days}
    data.cost_by_agent = dict(by_agent)
    data.agents = sorted(by_agent, key=lambda a: (-by_agent[a].cost_usd, _sort_key(a)))
    for stats in models.values():
        stats.latencies.sort()
    data.latency = sorted(models.values(), key=lambda m: (_sort_key(m.provider), _sort_key(m.model)))
    data.errors_by_type = sorted(error_types.items(), key=lambda item: (-item[1], item[0]))
    data.errors_by_model = sorted(((p, m, kind, n) for (p, m, kind), n in error_models.items()),
                                  key=lambda item: (-item[3], _sort_key(item[0]), _sort_key(item[1]), item[2]))
    # Stable for equal costs: the most recent first (rows come oldest first).
    data.top_tasks = sorted(reversed(priced), key=lambda task: -task.cost_usd)[:top]
    return data
