"""The OpenTelemetry SDK side of tracing (tracing.py holds the rest): the recorded `SpanData`
become SDK spans after the fact, with their recorded start and end times, and are exported.

Imported by `tracing.flush()` only, once a result is written (and by llm-exec-daemon's warm-up),
so an executor with tracing off never loads the SDK. An ImportError here means the `otel` extra is
missing. Nothing is registered globally (no global tracer provider, no atexit hook, no thread):
spans are collected by a processor of our own and exported synchronously, within the deadline.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from .. import __version__
from .tracing import SpanData, TraceParent

SCOPE = "llm_exec"
# How long a collector gets to answer, within the flush budget. Below the OTLP/HTTP exporter's first
# retry backoff (1 s, jittered by 20 %, so >= 0.8 s): a retry after a refused connection can then
# never fit in the budget, so a dead collector costs no waiting at all (with the budget alone, the
# jitter decided whether it waited 0.8 s for a second refusal), and a slow one at most this long.
EXPORT_TIMEOUT_SECONDS = 0.75
KINDS = {"client": SpanKind.CLIENT, "internal": SpanKind.INTERNAL}
# The exporters log their failures (a refused connection, a timeout, with a traceback) through
# `logging`; without a handler, Python's last-resort handler would print them on stderr. Our own
# one-line warning says it instead. An application that configured logging still gets the records.
logging.getLogger("opentelemetry").addHandler(logging.NullHandler())


class _Collector(SpanProcessor):
    """Keeps the ended spans, for one synchronous export (no batch thread to start or to join)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


class _ChosenIds(RandomIdGenerator):
    """Random ids, except the ones llm-route already handed to its executors in TRACEPARENT, before
    its spans existed: those are set here for the next span created."""

    def __init__(self) -> None:
        self.trace_id: int | None = None
        self.span_id: int | None = None

    def generate_trace_id(self) -> int:
        chosen, self.trace_id = self.trace_id, None
        return chosen if chosen is not None else super().generate_trace_id()

    def generate_span_id(self) -> int:
        chosen, self.span_id = self.span_id, None
        return chosen if chosen is not None else super().generate_span_id()


def resource(service_name: str) -> Resource:
    """The SDK's resource from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES; `service_name` only when
    they give none."""
    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        detected = detected.merge(Resource({SERVICE_NAME: service_name}))
    return detected


def build(spans: Sequence[SpanData], service_name: str) -> list[ReadableSpan]:
    """SDK spans for `spans` (and their children). The sampler is the SDK's (OTEL_TRACES_SAMPLER,
    by default parent-based always-on), so a caller's unsampled traceparent records nothing."""
    ids = _ChosenIds()
    collector = _Collector()
    provider = TracerProvider(resource=resource(service_name), id_generator=ids, shutdown_on_exit=False)
    provider.add_span_processor(collector)
    tracer = provider.get_tracer(SCOPE, __version__)
    for data in spans:
        _emit(tracer, ids, data, _context(data.parent))
    return collector.spans


def _emit(tracer: trace_api.Tracer, ids: _ChosenIds, data: SpanData, context: Context | None) -> None:
    ids.trace_id, ids.span_id = data.trace_id, data.span_id
    span = tracer.start_span(data.name, context=context, kind=KINDS[data.kind], attributes=data.attributes,
                             links=[Link(_span_context(link)) for link in data.links], start_time=data.start_ns)
    if data.failed:
        span.set_status(Status(StatusCode.ERROR, data.status_message))
    inner = trace_api.set_span_in_context(span)
    for child in data.children:
        _emit(tracer, ids, child, inner)
    span.end(end_time=max(data.end_ns, data.start_ns))


def _span_context(parent: TraceParent) -> SpanContext:
    state = TraceState.from_header([parent.tracestate]) if parent.tracestate else None
    return SpanContext(parent.trace_id, parent.span_id, is_remote=True, trace_flags=TraceFlags(parent.flags),
                       trace_state=state)


def _context(parent: TraceParent | None) -> Context | None:
    if parent is None:
        return None
    return trace_api.set_span_in_context(NonRecordingSpan(_span_context(parent)))


# -- export ------------------------------------------------------------------------------------------


def export(spans: Sequence[SpanData], *, deadline: float, service_name: str,
           exporter: SpanExporter | None = None) -> list[str]:
    """Build and export `spans` before `deadline` (time.monotonic()); returns the warnings to show.
    `exporter` replaces the ones the environment names (and is left open, for the caller to read)."""
    readable = build(spans, service_name)
    if not readable:
        return []  # the sampler dropped them all
    if exporter is not None:
        exporter.export(readable)
        return []
    warnings: list[str] = []
    for name, make in _exporters(warnings):
        timeout = max(0.01, min(EXPORT_TIMEOUT_SECONDS, deadline - time.monotonic()))
        try:
            chosen = make(timeout)
        except Exception as exc:  # a malformed OTEL_* setting: say which, export nothing there
            warnings.append(f"cannot set up the {name} trace exporter: {type(exc).__name__}: {exc}")
            continue
        try:
            try:
                exported = chosen.export(readable) is SpanExportResult.SUCCESS
            except Exception as exc:  # older exporters raise a refused connection or a timeout instead
                exported, why = False, f" ({type(exc).__name__})"
            else:
                why = ""
            if not exported:
                warnings.append(f"{len(readable)} span(s) not exported: {name} failed or did not answer "
                                f"within {timeout:.2g} s{why}")
        finally:
            chosen.shutdown()
    return warnings


def _exporters(warnings: list[str]) -> list[tuple[str, object]]:
    """(description, factory taking the timeout in seconds) for each exporter OTEL_TRACES_EXPORTER
    names (default otlp). `console` writes to stderr: stdout carries results only."""
    names = [n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    chosen: list[tuple[str, object]] = []
    for name in dict.fromkeys(names):
        if name == "none":
            continue
        if name == "console":
            chosen.append(("the console exporter", lambda _timeout: ConsoleSpanExporter(out=sys.stderr)))
        elif name == "otlp":
            otlp = _otlp(warnings)
            if otlp is not None:
                chosen.append(otlp)
        else:
            warnings.append(f"OTEL_TRACES_EXPORTER={name} is not supported (otlp, console, none): ignored")
    return chosen


def _otlp(warnings: list[str]) -> tuple[str, object] | None:
    protocol = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip().lower()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
        except ImportError:
            warnings.append("OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc "
                            "(not installed): no spans exported")
            return None
        return f"OTLP/gRPC {_endpoint('grpc')}", lambda timeout: GrpcSpanExporter(timeout=timeout)
    if protocol != "http/protobuf":
        warnings.append(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: sending http/protobuf")
    return f"OTLP/HTTP {_endpoint('http')}", lambda timeout: HttpSpanExporter(timeout=timeout)


def _endpoint(protocol: str) -> str:
    """The collector's address for messages: scheme, host, port and path only (no credentials)."""
    url = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not url:
        base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        default = "http://localhost:4318" if protocol == "http" else "http://localhost:4317"
        url = (base or default).rstrip("/") + ("/v1/traces" if protocol == "http" else "")
    try:
        parts = urlsplit(url.strip())
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"
    except ValueError:
        return "(malformed endpoint)"


def warm_up() -> None:
    """Build and encode one span, so every module and protobuf descriptor the export path loads
    lazily is loaded (llm-exec-daemon, before forking). Nothing is exported."""
    now = time.time_ns()
    span = SpanData(name="warm-up", start_ns=now, end_ns=now, attributes={"llm_exec.warm_up": True},
                    children=[SpanData(name="attempt 1", start_ns=now, end_ns=now, attributes={})])
    encode_spans(build([span], "llm-exec-daemon")).SerializeToString()
