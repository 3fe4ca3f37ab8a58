"""The exported metric families and `Totals`, what they add up to, as plain data.

All three ways out (the textfile, the Pushgateway, `llm-exec metrics --serve`) fill a `Totals` from
the same `CallFacts` with the same `observe()`, so a call counts the same wherever it is read. Only
built-in modules here: a one-shot executor with metrics on pays for no import beyond this package.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

# OpenTelemetry GenAI semantic conventions, the recommended ExplicitBucketBoundaries advice of
# gen_ai.client.token.usage and gen_ai.client.operation.duration.
TOKEN_BUCKETS: tuple[float, ...] = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                                    16777216, 67108864)
DURATION_BUCKETS: tuple[float, ...] = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                                       40.96, 81.92)

GEN_AI_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")
CALL_LABELS = ("provider", "model", "agent")


# NamedTuples rather than dataclasses: a dataclass costs ~0.5-1 ms to create at import, on every call.
class Family(NamedTuple):
    name: str  # as exported; a counter's ends in _total (its only series)
    kind: str  # "counter" | "gauge" | "histogram"
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()  # histograms: the finite upper bounds (le), +Inf implied

    @property
    def series(self) -> tuple[str, ...]:
        """The series names PromQL can select."""
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


TOKEN_USAGE = "gen_ai_client_token_usage"
OPERATION_DURATION = "gen_ai_client_operation_duration_seconds"
COST = "llm_exec_cost_usd_total"
REQUESTS = "llm_exec_requests_total"
RETRIES = "llm_exec_retries_total"
CIRCUIT_OPEN = "llm_exec_circuit_open"

FAMILIES: tuple[Family, ...] = (
    Family(TOKEN_USAGE, "histogram",
           "Input and output tokens of each GenAI operation (OpenTelemetry GenAI gen_ai.client.token.usage).",
           (*GEN_AI_LABELS, "gen_ai_token_type"), TOKEN_BUCKETS),
    Family(OPERATION_DURATION, "histogram",
           "GenAI operation duration, first request to last answer, retries included "
           "(OpenTelemetry GenAI gen_ai.client.operation.duration).",
           (*GEN_AI_LABELS, "error_type"), DURATION_BUCKETS),
    Family(COST, "counter", "Cost of the calls in USD (genai-prices); a call without a known price adds nothing.",
           CALL_LABELS),
    Family(REQUESTS, "counter", "Tasks finished, by status and error type (empty on success).",
           (*CALL_LABELS, "status", "error_type")),
    Family(RETRIES, "counter", "Retries made: attempts beyond the first.", CALL_LABELS),
    Family(CIRCUIT_OPEN, "gauge", "1 while the shared circuit breaker is open or half-open, 0 when closed.",
           ("provider", "model", "breaker_key")),
)
BY_NAME: dict[str, Family] = {family.name: family for family in FAMILIES}

Labels = tuple[str, ...]


class Totals:
    """Values per family and label values (in the family's label order): a float for counters and
    gauges, for histograms [count per bucket, non-cumulative, +Inf last, then the sum]."""

    def __init__(self) -> None:
        self.values: dict[str, dict[Labels, Any]] = {family.name: {} for family in FAMILIES}

    def __bool__(self) -> bool:
        return any(self.values.values())

    def add(self, name: str, labels: Labels, amount: float) -> None:
        series = self.values[name]
        series[labels] = series.get(labels, 0.0) + amount

    def set(self, name: str, labels: Labels, value: float) -> None:
        self.values[name][labels] = value

    def observe(self, name: str, labels: Labels, value: float) -> None:
        buckets = BY_NAME[name].buckets
        series = self.values[name]
        counts = series.get(labels)
        if counts is None:
            counts = series[labels] = [0] * (len(buckets) + 1) + [0.0]
        counts[bisect.bisect_left(buckets, value)] += 1  # le is inclusive: the first bound >= value
        counts[-1] += value

    def merge(self, other: Totals) -> None:
        """Add `other` in: counters and histograms sum; a gauge takes other's value (the newer one)."""
        for family in FAMILIES:
            mine, theirs = self.values[family.name], other.values[family.name]
            for labels, value in theirs.items():
                if family.kind == "gauge" or labels not in mine:
                    mine[labels] = list(value) if family.kind == "histogram" else value
                elif family.kind == "histogram":
                    mine[labels] = [a + b for a, b in zip(mine[labels], value, strict=True)]
                else:
                    mine[labels] += value

    def series(self, family: Family) -> Iterator[tuple[Labels, Any]]:
        """Label values and value of each series, in a stable order."""
        values = self.values[family.name]
        for labels in sorted(values):
            yield labels, values[labels]

    def to_doc(self) -> dict[str, list[list[Any]]]:
        """JSON-ready: {family: [[label values, value], ...]} (the Pushgateway totals in the store)."""
        return {name: [[list(labels), value] for labels, value in series.items()]
                for name, series in self.values.items() if series}

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> Totals:
        totals = cls()
        for name, series in (doc or {}).items():
            family = BY_NAME.get(name)
            if family is None:
                continue  # a family a newer llm-exec wrote: kept out rather than misread
            for labels, value in series:
                if len(labels) != len(family.labels):
                    continue
                if family.kind == "histogram" and len(value) != len(family.buckets) + 2:
                    continue  # other bucket bounds: cannot be added to ours
                totals.values[name][tuple(labels)] = value
        return totals


class CallFacts(NamedTuple):
    """What the metrics read of one finished task, from a result (one-shot, batch) or a ledger row."""

    provider: str
    model: str
    agent: str
    status: str
    error_type: str  # "" on success
    attempts: int  # as the result counts them (a try refused by the circuit breaker included)
    cost_usd: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cached: bool
    operation_seconds: float | None  # None: no request went out (cache hit, open circuit, bad spec...)
    gen_ai_operation: str
    gen_ai_provider: str


def observe(totals: Totals, call: CallFacts) -> None:
    """Add one task to `totals`."""
    who = (call.provider, call.model, call.agent)
    totals.add(REQUESTS, (*who, call.status, call.error_type), 1)
    if call.cost_usd is not None:
        totals.add(COST, who, float(call.cost_usd))
    if call.attempts >= 1:
        totals.add(RETRIES, who, call.attempts - 1)  # 0 too: the series exists from the first call
    if call.operation_seconds is None:
        return
    gen_ai = (call.gen_ai_operation, call.gen_ai_provider, call.model)
    totals.observe(OPERATION_DURATION, (*gen_ai, call.error_type), max(0.0, call.operation_seconds))
    if call.cached:
        return
    for token_type, count in (("input", call.prompt_tokens), ("output", call.completion_tokens)):
        if count is not None:  # a count the provider did not send is not a 0
            totals.observe(TOKEN_USAGE, (*gen_ai, token_type), count)


def facts_from_row(row: dict[str, Any], gen_ai: Callable[[str], tuple[str, str]],
                   redact: Callable[[str], str]) -> CallFacts:
    """A usage-ledger row (runner.ledger_row) as CallFacts; `gen_ai(provider)` gives the GenAI
    operation and provider names its provider class declares."""
    provider = str(row.get("provider") or "")
    operation, gen_ai_provider = gen_ai(provider)
    attempts = int(row.get("attempts") or 0)
    error_type = str(row.get("error_type") or "")
    if "operation_seconds" in row:
        seconds = row["operation_seconds"]
    elif attempts >= 1 and error_type != "circuit_open" and not row.get("cached"):
        # A row written before the ledger kept the call's own duration: the whole step is the
        # closest there is (its tokens would otherwise be lost to the histograms).
        seconds = row.get("latency_seconds")
    else:
        seconds = None
    return CallFacts(
        provider=provider,
        model=redact(str(row.get("model") or "")),
        agent=redact(str(row.get("agent") or "")),
        status=str(row.get("status") or ""),
        error_type=error_type,
        attempts=attempts,
        cost_usd=row.get("cost_usd"),
        prompt_tokens=row.get("prompt_tokens"),
        completion_tokens=row.get("completion_tokens"),
        cached=bool(row.get("cached")),
        operation_seconds=None if seconds is None else float(seconds),
        gen_ai_operation=operation,
        gen_ai_provider=gen_ai_provider,
    )


def breaker_labels(label: str) -> tuple[str, str]:
    """(provider, model) of a breaker document's label, "<provider> <model> <endpoint>" (guard.py);
    the endpoint is never exported (a URL can carry credentials)."""
    provider, _, rest = label.partition(" ")
    model = rest.rpartition(" ")[0] if " " in rest else rest
    return provider, model
