"""OpenTelemetry traces of each call, following the GenAI semantic conventions.

Nothing OpenTelemetry runs while a call is in flight. `record()` turns the runner's `CallRecord`
into plain data (`SpanData`: names, ns timestamps, attributes) with the standard library only;
`flush()`, called once the result line is out, imports the SDK (`_otel_traces`), creates the spans
after the fact from those timestamps and exports them, all within `FLUSH_BUDGET_SECONDS`, so a dead
or slow collector never delays the result or changes it. A one-shot executor flushes once before
it exits, a batch once after its last line; a task served by llm-exec-daemon is flushed by its
forked child, which has the caller's environment (the daemon imports the SDK before forking, see
`warm_up`, so the child does not pay for the import).

Per call: one CLIENT span `{gen_ai.operation.name} {gen_ai.request.model}` from the task's start
(process start for a one-shot executor) to its result, and one CLIENT child span per HTTP attempt,
so retries show, each failed one with its `error.type`.

The caller's trace: `TRACEPARENT` (+ `TRACESTATE`) in the environment, else the task's
`metadata.traceparent` (+ `metadata.tracestate`), makes the call span a child of the caller's span.
When both are present the environment wins: it was set by the process that started this one (the
nearest caller, e.g. llm-route, which must pass `metadata` on unchanged), while a spec's metadata may
have been written anywhere upstream. A metadata traceparent of another trace is then kept as a
span link, so neither is lost.

Prompt and completion text are recorded only with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
=true (as `gen_ai.system_instructions`, `gen_ai.input.messages` and `gen_ai.output.messages`, JSON
strings in the conventions' message format). Every exported string goes through the call's
`Secrets`, so no key is ever exported, even one pasted into a prompt.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import CallRecord

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from ..config import Secrets

# The whole of flush(): importing the SDK, building the spans and exporting them. The exporter's own
# timeout (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s by default) is capped to what is left of it.
FLUSH_BUDGET_SECONDS = 1.0
CAPTURE_CONTENT_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
# "true" is the variable's documented value; the others are the newer instrumentations' spellings
# that also put content on spans.
_CAPTURE_VALUES = frozenset({"true", "1", "yes", "span_only", "span_and_event"})
SAMPLED = 0x01

AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]


@dataclass(frozen=True)
class TraceParent:
    """A W3C trace context (traceparent and its tracestate)."""

    trace_id: int
    span_id: int
    flags: int = SAMPLED
    tracestate: str | None = None

    @property
    def header(self) -> str:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{self.flags:02x}"


_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def parse_traceparent(value: Any, tracestate: Any = None) -> TraceParent | None:
    """The context a `traceparent` header value names, or None when it is not a valid one (W3C
    Trace Context: an invalid traceparent is ignored, never repaired)."""
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    # Version ff is forbidden; version 00 has exactly four fields (later versions may add some).
    if version == "ff" or (version == "00" and rest):
        return None
    if int(trace_id, 16) == 0 or int(span_id, 16) == 0:
        return None
    state = tracestate.strip() if isinstance(tracestate, str) and tracestate.strip() else None
    return TraceParent(int(trace_id, 16), int(span_id, 16), int(flags, 16), state)


def caller_context(env: Mapping[str, str], metadata: Any) -> tuple[TraceParent | None, TraceParent | None]:
    """(parent, link): the caller's context, and a second one to link to (see the module's docstring
    for why the environment wins)."""
    from_env = parse_traceparent(env.get("TRACEPARENT"), env.get("TRACESTATE"))
    from_spec = None
    if isinstance(metadata, Mapping):
        from_spec = parse_traceparent(metadata.get("traceparent"), metadata.get("tracestate"))
    if from_env is None:
        return from_spec, None
    if from_spec is not None and from_spec.trace_id != from_env.trace_id:
        return from_env, from_spec
    return from_env, None


def capture_content(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get(CAPTURE_CONTENT_VARIABLE, "").strip().lower() in _CAPTURE_VALUES


@dataclass
class SpanData:
    """One span as plain data, created as an OpenTelemetry span only at flush time."""

    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, AttributeValue]
    kind: str = "client"  # or "internal"
    failed: bool = False  # span status ERROR
    status_message: str | None = None
    parent: TraceParent | None = None  # only for a root: children hang under their parent SpanData
    links: tuple[TraceParent, ...] = ()
    children: list[SpanData] = field(default_factory=list)
    # Chosen before the span exists when a child process must already name it (llm-route); else the
    # SDK picks them.
    trace_id: int | None = None
    span_id: int | None = None


# What record() made and flush() has not exported yet.
_pending: list[SpanData] = []
_pending_lock = threading.Lock()
# Where flush() delivers instead of the exporters the environment names (tests: the SDK's in-memory one).
_exporter: SpanExporter | None = None
_warned: set[str] = set()


def set_exporter(exporter: SpanExporter | None) -> None:
    """Export to `exporter` instead of what the OTEL_* variables name (None: back to those). For
    tests and for embedding llm_exec in a process that has its own exporter."""
    global _exporter
    _exporter = exporter


def record(call: CallRecord) -> None:
    """Keep one finished call's span (and its attempts'), for the next flush()."""
    span = call_span(call, os.environ)
    with _pending_lock:
        _pending.append(span)


def flush() -> None:
    """Export what was recorded, within FLUSH_BUDGET_SECONDS; problems are one line each on stderr."""
    with _pending_lock:
        spans = _pending[:]
        _pending.clear()
    if not spans:
        return
    deadline = time.monotonic() + FLUSH_BUDGET_SECONDS
    try:
        from . import _otel_traces
    except ImportError as exc:
        _warn_once(f"OTEL_* variables ask for traces, but OpenTelemetry is not installed ({exc.name or exc}): "
                   "pip install 'llm-exec[otel]'; no spans exported")
        return
    for message in _otel_traces.export(spans, deadline=deadline, service_name=_service_name(),
                                       exporter=_exporter):
        _warn_once(message)


def warm_up() -> None:
    """In llm-exec-daemon, before it forks: import the SDK and exporter (when installed) and encode one
    span, so that a task with tracing on does not pay for that in its own process. Imports only: no
    thread is started and nothing is exported."""
    try:
        from . import _otel_traces
    except ImportError:
        return  # the otel extra is not installed: tasks warn about it themselves
    _otel_traces.warm_up()


# -- one call ----------------------------------------------------------------------------------------


def call_span(call: CallRecord, env: Mapping[str, str]) -> SpanData:
    """The span of one call (the GenAI client span) with a child span per HTTP attempt."""
    result = call.result or {}
    request = call.request
    cls = call.provider_cls
    redact = _redactor(call.secrets)
    # Without a provider class (the spec was invalid before one was chosen), the executor's own
    # provider name from the result still says who would have been called.
    operation = cls.gen_ai_operation if cls is not None else "chat"
    provider = (cls.gen_ai_provider or cls.name) if cls is not None else result.get("provider")
    model = request.model if request is not None else result.get("model")
    error = result.get("error") if isinstance(result.get("error"), Mapping) else None
    finish_reason = result.get("finish_reason")
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": result.get("response_model"),
        "gen_ai.response.id": result.get("request_id"),
        "gen_ai.usage.input_tokens": result.get("prompt_tokens"),
        "gen_ai.usage.output_tokens": result.get("completion_tokens"),
        "gen_ai.usage.cache_read.input_tokens": result.get("cached_tokens"),
        "gen_ai.usage.reasoning.output_tokens": result.get("reasoning_tokens"),
        # The conventions ask for "error" where a finish reason was expected but none came.
        "gen_ai.response.finish_reasons": [finish_reason] if finish_reason else (["error"] if error else None),
    }
    if request is not None:
        attributes.update({
            "gen_ai.request.max_tokens": request.max_tokens,
            "gen_ai.request.temperature": request.temperature,
            "gen_ai.request.top_p": request.top_p,
            "gen_ai.request.seed": request.seed,
            "gen_ai.request.stop_sequences": list(request.stop) or None,
            "gen_ai.request.stream": True if request.stream else None,  # set only when streaming
        })
    server = server_attributes(call.base_url)
    attributes.update(server)
    if error is not None:
        attributes["error.type"] = error.get("type")
    attributes.update({
        "llm_exec.cost_usd": result.get("cost_usd"),
        "llm_exec.attempts": result.get("attempts"),
        "llm_exec.task_id": result.get("task_id"),
        "llm_exec.agent": result.get("agent"),
        "llm_exec.exit_code": result.get("exit_code"),
        "llm_exec.cached": True if result.get("cached") else None,
    })
    if capture_content(env):
        attributes.update(_content(call, result))
    end_ns = call.ended_ns or time.time_ns()
    parent, link = caller_context(env, (call.spec or {}).get("metadata"))
    span = SpanData(
        name=f"{operation} {model}" if model else operation,
        start_ns=call.started_ns,
        end_ns=end_ns,
        attributes=_clean(attributes, redact),
        failed=error is not None,
        status_message=redact(str(error.get("message"))) if error is not None and error.get("message") else None,
        parent=parent,
        links=(link,) if link else (),
    )
    for index, attempt in enumerate(call.attempts, 1):
        attempt_attributes: dict[str, Any] = {"llm_exec.attempt": index, **server}
        if index > 1:
            attempt_attributes["http.request.resend_count"] = index - 1  # as the HTTP conventions count resends
        if attempt.error_type:
            attempt_attributes["error.type"] = attempt.error_type
        span.children.append(SpanData(
            name=f"attempt {index}",
            start_ns=attempt.started_ns,
            end_ns=attempt.ended_ns or end_ns,
            attributes=_clean(attempt_attributes, redact),
            failed=attempt.error_type is not None,
        ))
    return span


def server_attributes(base_url: str | None) -> dict[str, Any]:
    """server.address and server.port of a base URL (its userinfo, path and query are never exported)."""
    if not base_url:
        return {}
    try:
        parts = urlsplit(base_url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return {}
    if not host:
        return {}
    if port is None:
        port = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return {"server.address": host, "server.port": port}


def _content(call: CallRecord, result: Mapping[str, Any]) -> dict[str, Any]:
    """The opt-in content attributes, in the conventions' message format (as JSON strings: span
    attributes cannot hold structured values)."""
    out: dict[str, Any] = {}
    request = call.request
    if request is not None:
        system, turns = request.split_system()
        if system is not None:
            out["gen_ai.system_instructions"] = _json([{"type": "text", "content": system}])
        out["gen_ai.input.messages"] = _json([{"role": m.role, "parts": [{"type": "text", "content": m.content}]}
                                              for m in turns])
    output = result.get("output")
    if isinstance(output, str):
        out["gen_ai.output.messages"] = _json([{
            "role": "assistant", "parts": [{"type": "text", "content": output}],
            "finish_reason": result.get("finish_reason") or ("error" if result.get("error") else "stop"),
        }])
    return out


# -- llm-route ---------------------------------------------------------------------------------------


class RouteTrace:
    """llm-route's spans while it runs, as plain data: one INTERNAL span for the route (the decision:
    chosen agent, candidates, reason) and a child per agent attempted. Each child's span id is chosen
    before its executor starts, so the executor gets it as TRACEPARENT and its call span is that
    attempt's child: caller, route, agent attempts and calls form one trace."""

    def __init__(self, started_ns: int, metadata: Any, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.parent, link = caller_context(env, metadata)
        self.links = (link,) if link else ()
        self.trace_id = self.parent.trace_id if self.parent else _random_id(16)
        # Not sampled upstream: not here either, and the executors are told so.
        self.flags = self.parent.flags if self.parent else SAMPLED
        self.tracestate = self.parent.tracestate if self.parent else None
        self.span_id = _random_id(8)
        self.started_ns = started_ns
        self.agents: list[SpanData] = []
        self._lock = threading.Lock()  # consensus runs agents on threads

    def agent(self, name: str, agent_type: str, model: str | None) -> SpanData:
        """The span of one agent attempt, started now."""
        with self._lock:
            order = len(self.agents) + 1
            span = SpanData(name=f"agent {name}", start_ns=time.time_ns(), end_ns=0, kind="internal",
                            attributes={"llm_exec.agent": name, "llm_exec.agent.type": agent_type,
                                        "gen_ai.request.model": model, "llm_exec.route.attempt": order},
                            trace_id=self.trace_id, span_id=_random_id(8))
            self.agents.append(span)
        return span

    def child_env(self, span: SpanData) -> dict[str, str]:
        """The executor's TRACEPARENT/TRACESTATE: its call span becomes a child of `span`."""
        assert span.span_id is not None
        context = TraceParent(self.trace_id, span.span_id, self.flags, self.tracestate)
        return {"TRACEPARENT": context.header, "TRACESTATE": self.tracestate or ""}

    def agent_done(self, span: SpanData, result: Mapping[str, Any]) -> None:
        span.end_ns = time.time_ns()
        error = result.get("error") if isinstance(result.get("error"), Mapping) else None
        span.attributes["llm_exec.exit_code"] = result.get("exit_code")
        if error is not None:
            span.attributes["error.type"] = error.get("type")
            span.failed = True

    def finish(self, result: Mapping[str, Any], decision: Any, secrets: Secrets | None) -> None:
        """Record the route's span (after its result was written) and export everything."""
        from . import _warn

        try:
            self._record(result, decision, secrets)
            flush()
        except Exception as exc:  # as telemetry.record: never costs the caller its result
            _warn(f"telemetry: {type(exc).__name__}: {exc}")

    def _record(self, result: Mapping[str, Any], decision: Any, secrets: Secrets | None) -> None:
        redact = _redactor(secrets)
        error = result.get("error") if isinstance(result.get("error"), Mapping) else None
        route = result.get("route") if isinstance(result.get("route"), Mapping) else {}
        attributes: dict[str, Any] = {
            "llm_exec.task_id": result.get("task_id"),
            "llm_exec.agent": result.get("agent"),
            "llm_exec.exit_code": result.get("exit_code"),
            "llm_exec.cost_usd": route.get("actual_cost_usd"),
            "llm_exec.route.estimated_cost_usd": route.get("estimated_cost_usd"),
            "llm_exec.route.tried": [a.get("agent") for a in route.get("tried", ()) if isinstance(a, Mapping)] or None,
            "error.type": error.get("type") if error is not None else None,
        }
        if decision is not None:
            reason = ("pinned" if decision.pinned else "default agent" if decision.used_default_agent
                      else decision.rule)
            attributes.update({
                "llm_exec.route.chosen": decision.chosen,
                "llm_exec.route.candidates": list(decision.ranking) or None,
                "llm_exec.route.reason": reason,
                "llm_exec.route.complexity": decision.complexity.level,
                "llm_exec.route.consensus": (route.get("consensus") or {}).get("requested"),
            })
        with self._lock:
            agents = list(self.agents)
        for span in agents:
            span.attributes = _clean(span.attributes, redact)
            span.end_ns = span.end_ns or time.time_ns()
        root = SpanData(
            name="llm-route", start_ns=self.started_ns, end_ns=time.time_ns(), kind="internal",
            attributes=_clean(attributes, redact), failed=error is not None,
            status_message=redact(str(error.get("message"))) if error is not None and error.get("message") else None,
            parent=self.parent, links=self.links, children=agents, trace_id=self.trace_id, span_id=self.span_id,
        )
        with _pending_lock:
            _pending.append(root)


# -- helpers -----------------------------------------------------------------------------------------


def _random_id(size: int) -> int:
    """A random non-zero id of `size` bytes (os.urandom: nothing to import)."""
    while True:
        value = int.from_bytes(os.urandom(size), "big")
        if value:
            return value


def _redactor(secrets: Secrets | None) -> Any:
    return secrets.redact if secrets is not None else (lambda text: text)


def _clean(attributes: Mapping[str, Any], redact: Any) -> dict[str, AttributeValue]:
    """Attributes as OpenTelemetry takes them: no None (an unknown value is left out, never made
    up), strings redacted, sequences as lists of one primitive type."""
    clean: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, str):
            clean[key] = redact(value)
        elif isinstance(value, bool | int | float):
            clean[key] = value
        elif isinstance(value, list | tuple):
            items = [redact(v) if isinstance(v, str) else v for v in value if v is not None]
            if items and len({type(v) for v in items}) == 1 and isinstance(items[0], str | bool | int | float):
                clean[key] = items
        else:
            clean[key] = redact(str(value))
    return clean


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _service_name() -> str:
    """service.name when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES gives one: the
    executable (llm-exec-gpt, llm-route, ...)."""
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return program if program.startswith("llm-") else "llm-exec"


def _warn_once(message: str) -> None:
    if message in _warned:
        return
    _warned.add(message)
    from . import _warn

    _warn(f"telemetry: {message}")
