"""Prometheus metrics of the calls, named after the OpenTelemetry GenAI semantic conventions.

Executors live for one task, so nothing here is scraped from them. Three ways out:

- LLM_EXEC_PROM_TEXTFILE=path: every process adds its counts into one file for node-exporter's
  textfile collector, under a lock, atomically (_metrics_textfile.py);
- LLM_EXEC_PUSHGATEWAY=url: running totals per grouping key kept in the state store, pushed by one
  process at a time (_metrics_push.py);
- `llm-exec metrics --serve`: a scrape endpoint computed from the usage ledger, one view for every
  process sharing the store (_metrics_ledger.py, cli/metrics_command.py).

`record()` (once per finished task, from the telemetry hook) only adds to this process's totals;
`flush()` (once per process, after the result is written) delivers them. Neither imports
prometheus_client: the textfile and the push are written by _metrics_text.py, which writes what
prometheus_client writes. Provider names come from the provider classes (`gen_ai_provider`,
falling back to `name`, and `gen_ai_operation`); label values a task supplies (model, agent) have
every key value redacted.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

from ._metrics_model import (
    CIRCUIT_OPEN,
    DURATION_BUCKETS,
    FAMILIES,
    TOKEN_BUCKETS,
    CallFacts,
    Totals,
    observe,
)

if TYPE_CHECKING:
    from . import CallRecord

__all__ = ["DURATION_BUCKETS", "EXPORTED_METRICS", "EXPORTED_SERIES", "TOKEN_BUCKETS", "flush", "gen_ai_names",
           "record"]

#: Every exported metric, name -> Prometheus type. Histograms are selected in PromQL as
#: <name>_bucket, <name>_sum and <name>_count; a counter's name already ends in _total.
EXPORTED_METRICS: dict[str, str] = {family.name: family.kind for family in FAMILIES}
#: Every series name PromQL can select, from EXPORTED_METRICS.
EXPORTED_SERIES: frozenset[str] = frozenset(series for family in FAMILIES for series in family.series)

# This process's counts since its last flush (a batch records one task per line, flushes once).
_pending = Totals()
# Breakers whose state after the call only the store knows (the call ended in a retryable failure):
# breaker key -> the gauge's label values, read at flush.
_breakers_to_read: dict[str, tuple[str, str, str]] = {}


def record(call: CallRecord) -> None:
    """Add one finished task to this process's totals (nothing is written before `flush`)."""
    result = call.result or {}
    error = result.get("error") or {}
    cls = call.provider_cls
    redact = call.secrets.redact if call.secrets is not None else str
    provider = str(result.get("provider") or (cls.name if cls is not None else ""))
    model = redact(str(result.get("model") or ""))
    ended = [attempt.ended_ns for attempt in call.attempts if attempt.ended_ns is not None]
    seconds = (max(ended) - call.attempts[0].started_ns) / 1e9 if ended else None
    if cls is not None:
        operation, gen_ai_provider = cls.gen_ai_operation, cls.gen_ai_provider or cls.name
    else:  # no provider was set up (a bad spec): no request went out, so the names label nothing
        operation, gen_ai_provider = "", ""
    observe(_pending, CallFacts(
        provider=provider,
        model=model,
        agent=redact(str(result.get("agent") or "")),
        status=str(result.get("status") or ""),
        error_type=str(error.get("type") or ""),
        attempts=int(result.get("attempts") or 0),
        cost_usd=result.get("cost_usd"),
        prompt_tokens=result.get("prompt_tokens"),
        completion_tokens=result.get("completion_tokens"),
        cached=bool(result.get("cached")),
        operation_seconds=seconds,
        gen_ai_operation=operation,
        gen_ai_provider=gen_ai_provider,
    ))
    if result.get("state") == "ok" and cls is not None and call.request is not None:
        _note_breaker(call, provider, model, error)


def _note_breaker(call: CallRecord, provider: str, model: str, error: dict[str, object]) -> None:
    """The circuit breaker this call went through, as the gauge's value after it: any answer from
    the provider closed it (guard.after_attempt), a refusal means it is open; after a retryable
    failure only the store knows whether the streak opened it."""
    from ..state.guard import CallIdentity  # already imported: the call went through the guard

    assert call.provider_cls is not None and call.request is not None
    key = CallIdentity(call.provider_cls.name, call.request.model, call.base_url or "", "").breaker_key
    labels = (provider, model, key)
    if error.get("type") == "circuit_open":
        _pending.set(CIRCUIT_OPEN, labels, 1)
    elif call.attempts:  # a request went out
        if error.get("retryable"):
            _breakers_to_read[key] = labels
        else:
            _pending.set(CIRCUIT_OPEN, labels, 0)
            _breakers_to_read.pop(key, None)


def flush() -> None:
    """Deliver this process's totals to the textfile and/or the Pushgateway, then start anew."""
    global _pending
    from . import _warn

    if _breakers_to_read:
        _read_breakers(_pending)
    totals, _pending = _pending, Totals()
    if not totals:
        return
    env = os.environ
    path = env.get("LLM_EXEC_PROM_TEXTFILE", "").strip()
    if path:
        from ._metrics_textfile import merge_into

        try:
            merge_into(path, totals, _warn)
        except (OSError, TimeoutError) as exc:
            _warn(f"metrics: cannot write LLM_EXEC_PROM_TEXTFILE {path}: {exc}")
    if env.get("LLM_EXEC_PUSHGATEWAY", "").strip():
        from ._metrics_push import push

        push(totals, env, _warn)


def _read_breakers(totals: Totals) -> None:
    from ..state import StateUnavailable, open_store

    try:
        store = open_store()
        try:
            for key, labels in _breakers_to_read.items():
                doc = store.get(key)
                totals.set(CIRCUIT_OPEN, labels, 0 if doc is None or doc.get("state") == "closed" else 1)
        finally:
            store.close()
    except StateUnavailable:
        pass  # no store, no breaker to report
    _breakers_to_read.clear()


def gen_ai_names(provider: str) -> tuple[str, str]:
    """(gen_ai.operation.name, gen_ai.provider.name) of the provider class reporting `provider` as
    its name (a ledger row holds only that); an unknown name stands for itself."""
    from ..providers.base import BaseLlm

    return _gen_ai_table().get(provider, (BaseLlm.gen_ai_operation, provider))


@cache
def _gen_ai_table() -> dict[str, tuple[str, str]]:
    """Every loadable provider class (built-ins, plugins, and the classes they select by options,
    such as an OpenAI-compatible llama) by its `name`."""
    import inspect

    from ..errors import ConfigurationError
    from ..providers.base import BaseLlm
    from ..providers.registry import entries

    for entry in entries():
        try:
            entry.load()  # imports the module, whose subclasses of BaseLlm are then found below
        except ConfigurationError:
            continue  # a broken plugin: its rows keep their plain names
    table: dict[str, tuple[str, str]] = {}
    stack: list[type[BaseLlm]] = [BaseLlm]
    while stack:
        cls = stack.pop(0)
        stack.extend(cls.__subclasses__())
        name = getattr(cls, "name", None)
        if isinstance(name, str) and not inspect.isabstract(cls):
            table.setdefault(name, (cls.gen_ai_operation, cls.gen_ai_provider or name))
    return table
