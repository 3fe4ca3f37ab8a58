"""Telemetry of each call: OpenTelemetry traces (telemetry/tracing.py) and Prometheus metrics
(telemetry/metrics.py), both off unless the environment asks for them.

The runner knows nothing about either: it fills one `CallRecord` per task (the result object, the
provider class, the request, each HTTP attempt's wall-clock span) and hands it to `record()` once
the result is final; a one-shot process calls `flush()` after its result line is written. When
nothing is asked for, `active()` is a few dictionary look-ups and nothing else is imported, so
start-up time does not move.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Secrets
    from ..providers.base import BaseLlm
    from ..request import LlmRequest

# The standard OpenTelemetry variables that turn tracing on (OTEL_TRACES_EXPORTER=none keeps it off).
TRACING_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER")
# Ours, one per way out of a short-lived process.
METRICS_VARIABLES = ("LLM_EXEC_PROM_TEXTFILE", "LLM_EXEC_PUSHGATEWAY")


@dataclass
class Attempt:
    """One HTTP attempt of a call, on the wall clock (ns since the epoch, as OTel wants)."""

    started_ns: int
    ended_ns: int | None = None
    error_type: str | None = None  # None: the attempt succeeded


@dataclass
class CallRecord:
    """Everything telemetry may report of one task, gathered by the runner as it goes."""

    started_ns: int  # when the task's clock started (process start for a one-shot executor)
    provider_cls: type[BaseLlm] | None = None
    request: LlmRequest | None = None
    base_url: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    spec: dict[str, Any] | None = None  # the raw task (metadata.traceparent lives there)
    result: dict[str, Any] | None = None  # the final result object (not yet redacted)
    ended_ns: int | None = None
    secrets: Secrets | None = None  # what to scrub from anything exported (error messages)


def tracing_enabled(env: Any = None) -> bool:
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return any(env.get(name) for name in TRACING_VARIABLES)


def metrics_enabled(env: Any = None) -> bool:
    env = os.environ if env is None else env
    return any(env.get(name) for name in METRICS_VARIABLES)


def active() -> bool:
    """Whether any telemetry is asked for; the runner skips all record keeping when not."""
    return tracing_enabled() or metrics_enabled()


def record(call: CallRecord) -> None:
    """Report one finished task. Telemetry never changes a result: its failures go to stderr."""
    try:
        if tracing_enabled():
            from . import tracing

            tracing.record(call)
        if metrics_enabled():
            from . import metrics

            metrics.record(call)
    except Exception as exc:  # an exporter bug or a broken collector must not cost the caller its result
        _warn(f"telemetry: {type(exc).__name__}: {exc}")


def flush() -> None:
    """Deliver what was recorded before the process leaves, bounded in time (tracing: <= 1 s)."""
    try:
        if tracing_enabled():
            from . import tracing

            tracing.flush()
        if metrics_enabled():
            from . import metrics

            metrics.flush()
    except Exception as exc:
        _warn(f"telemetry: {type(exc).__name__}: {exc}")


def _warn(message: str) -> None:
    import contextlib
    import sys

    with contextlib.suppress(OSError, ValueError):  # stderr closed: nothing else to do
        sys.stderr.write(f"llm-exec: {message}\n")
