"""One task, start to finish: input bytes -> TaskSpec -> provider call under the retry policy
and the deadline -> one result object -> exit code.

This is the whole behaviour of an executor; the click commands only parse flags and call `run`.
Every path, including a bug of ours, ends in exactly one result object on the output and the
documented exit code. Diagnostics go to stderr, redacted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .config import Secrets, process_start_monotonic
from .errors import CancelledError, ContentFilterError, LlmError, TaskSpecError
from .providers.base import BaseLlm
from .providers.registry import get_provider
from .request import LlmRequest
from .response import LlmResponse
from .result import Output, build_result
from .retry import Deadline, RetryPolicy, Sleep, call_with_retries
from .task import TaskSpec, estimate_prompt_tokens, max_spec_bytes, parse_task

if TYPE_CHECKING:
    from .state.guard import Guard

# Captured at import, the earliest point our code runs; the deadline itself counts from the
# process start reported by the OS (see config.process_start_monotonic).
PROCESS_START = process_start_monotonic()


@dataclass(frozen=True)
class RunOptions:
    executor: str  # registry name: claude, gpt, gemini, custom, llama
    program: str  # for messages on stderr, e.g. "llm-exec-claude"
    input_path: str | None = None
    output_path: str | None = None
    stream: bool = False
    dry_run: bool = False
    pretty: bool = False
    # time.monotonic() the deadline counts from: the process start for a one-shot executor
    # (PROCESS_START); None = when run() is called (in-process use).
    started: float | None = None
    # The retry loop's sleep; tests inject a recording one to assert waits without waiting.
    sleep: Sleep = field(default=asyncio.sleep, compare=False)


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so no `except Exception` can swallow it."""


@dataclass
class _Call:
    """What is known so far, so a failure at any point still reports it."""

    provider: str
    task: dict[str, Any] | None = None
    model: str | None = None
    attempts: int = 0
    partial: list[str] | None = None


def _read_input(path: str | None) -> bytes:
    """The spec's bytes, reading at most one byte past the size limit (bounded memory)."""
    limit = max_spec_bytes()
    if path and path != "-":
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    else:
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            # Drain the rest without keeping it, so the writer sees its input consumed, not EPIPE.
            while sys.stdin.buffer.read(1 << 20):
                pass
    if len(data) > limit:
        raise TaskSpecError(f"task spec is larger than the limit of {limit} bytes (LLM_EXEC_MAX_SPEC_BYTES)")
    return data


def _log(program: str, secrets: Secrets, message: str) -> None:
    try:
        sys.stderr.write(secrets.redact(f"{program}: {message}\n"))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr closed: nothing else to do


def run(options: RunOptions) -> int:
    """Run one task; returns the exit code (0 success, 1 execution, 2 configuration, 3 task spec)."""
    started = options.started if options.started is not None else time.monotonic()
    restore = _handle_termination()
    try:
        return _run(options, started)
    finally:
        restore()


def _run(options: RunOptions, started: float) -> int:
    secrets = Secrets.from_env()
    output = Output(options.output_path, secrets, pretty=options.pretty)
    provider_cls = get_provider(options.executor)
    call = _Call(provider=provider_cls.name)
    response: LlmResponse | None = None
    cost: float | None = None
    error: LlmError | None = None
    guard: Guard | None = None
    state: str | None = None  # unknown until the call is set up
    cached = False
    try:
        spec = parse_task(_read_input(options.input_path))
        call.task = dict(spec.raw)
        if spec.get("api_key_env"):
            secrets = output.secrets = Secrets.from_env([spec.get("api_key_env")])
        provider_cls = provider_cls.for_options(_provider_options(spec))
        call.provider = provider_cls.name
        request = spec.to_request(provider_cls.default_model)
        if options.stream and not request.stream:
            request = replace(request, stream=True)
        call.model = request.model
        deadline = Deadline(started + spec.timeout_seconds)
        llm = provider_cls.from_env(
            api_key_env=spec.get("api_key_env"),
            api_endpoint=spec.get("api_endpoint"),
            timeout=max(0.001, deadline.remaining()),
            options=request.options,
        )
        if options.dry_run:
            output.result({"dry_run": True, "provider": llm.name, "model": request.model,
                           "request": llm.describe(request)})
            return 0
        guard = _open_guard(llm, request, spec, lambda message: _log(options.program, secrets, message))
        state = guard.status if guard else "off"
        response = guard.cached_response(request) if guard else None
        if response is not None:
            cached = True
            if request.stream and response.content:
                output.delta(response.content)  # a replayed stream arrives as one delta
        else:
            response = asyncio.run(_execute(llm, request, spec, deadline, output, call, options.sleep, guard))
            from .pricing import cost_usd  # deferred: genai-prices loads its price data on import

            cost = cost_usd(provider_cls.pricing_provider, (response.model, request.model), response.usage)
            if guard:
                guard.store_response(request, response)
        if response.finish_reason == "content_filter":
            raise ContentFilterError("the provider filtered the answer (finish_reason content_filter)")
    except LlmError as exc:
        error = exc
    except KeyboardInterrupt:
        error = CancelledError("cancelled by SIGINT")
    except Terminated:
        error = CancelledError("cancelled by SIGTERM")
    except Exception as exc:  # a bug of ours: still one valid result, and a traceback on stderr
        if os.environ.get("LLM_EXEC_RAISE"):
            raise
        _log(options.program, secrets, "internal error:\n" + "".join(traceback.format_exception(exc)))
        error = LlmError(f"internal error: {type(exc).__name__}: {exc}")
    if error is not None:
        call.attempts = error.attempts if error.attempts is not None else call.attempts
        field = f" (field {error.field})" if error.field else ""
        _log(options.program, secrets, f"{error.type}: {error.message}{field} -> exit {error.exit_code}")
    result = build_result(
        provider=call.provider,
        task=call.task,
        model=call.model,
        elapsed=time.monotonic() - started,
        attempts=call.attempts,
        response=response,
        cost=cost,
        error=error,
        partial_output="".join(call.partial) if call.partial else None,
        cached=cached,
        state=guard.status if guard else state,
    )
    if guard:
        guard.finish(ledger_row(result, call), response.usage if response and not cached else None, cost)
        guard.close()
    output.result(result)
    output.close()
    return result["exit_code"]


def _open_guard(llm: BaseLlm, request: LlmRequest, spec: TaskSpec, warn: Any) -> Guard | None:
    """The shared-state guard for this call, or None when every protection is off (no import cost)."""
    from .state import state_enabled

    if not state_enabled() and (spec.get("cache") or os.environ.get("LLM_EXEC_CACHE", "off")) == "off":
        return None
    from .state.guard import CallIdentity, Guard, GuardConfig, key_fingerprint

    config = GuardConfig.from_env(llm.name, spec.get("cache"))
    identity = CallIdentity(llm.name, request.model, llm.base_url or "", key_fingerprint(llm.api_key))
    return Guard(config, identity, warn)


def ledger_row(result: dict[str, Any], call: _Call) -> dict[str, Any]:
    """One usage-ledger row per call. Prompt and output text are dropped by the guard unless
    LLM_EXEC_LEDGER_TEXT=1."""
    row = {name: result.get(name) for name in (
        "timestamp", "task_id", "agent", "provider", "model", "response_model", "prompt_tokens", "completion_tokens",
        "cached_tokens", "reasoning_tokens", "tokens_used", "cost_usd", "status", "attempts", "cached", "exit_code",
        "output")}
    row["ts"] = time.time()
    row["latency_seconds"] = result["execution_time_seconds"]
    row["error_type"] = (result.get("error") or {}).get("type")
    task = call.task or {}
    row["prompt"] = task.get("prompt") or task.get("description")
    return row


def _provider_options(spec: TaskSpec) -> dict[str, Any]:
    return {k: spec.get(k) for k in ("api_style", "custom") if spec.get(k) is not None}


async def _execute(
    llm: BaseLlm, request: LlmRequest, spec: TaskSpec, deadline: Deadline, output: Output, call: _Call,
    sleep: Sleep, guard: Guard | None,
) -> LlmResponse:
    """The provider call under the retry policy (and the shared-state guard), cancellable by
    SIGINT/SIGTERM."""
    _cancellable.append((asyncio.get_running_loop(), asyncio.current_task()))
    policy = RetryPolicy(max_retries=spec.max_retries)
    emitted: list[str] = []
    call.partial = emitted

    async def guarded_attempt() -> LlmResponse:
        if guard is None:
            return await attempt()
        guard.before_attempt()  # an open circuit fails here, without touching the network
        try:
            response = await attempt()
        except LlmError as exc:
            guard.after_attempt(exc)
            raise
        guard.after_attempt(None)
        return response

    async def attempt() -> LlmResponse:
        call.attempts += 1
        if not request.stream:
            return await llm.generate(request)
        final: LlmResponse | None = None
        async for item in llm.stream(request):
            if isinstance(item, LlmResponse):
                final = item
            else:
                emitted.append(item)
                output.delta(item)
        if final is None:  # a provider bug: streams must end with their response
            raise LlmError("stream ended without a final response")
        return final

    try:
        # Once deltas are on stdout they cannot be taken back: no retry after the first one.
        if guard is not None:
            await guard.admit(*_estimate(llm, request, spec), remaining=deadline.remaining, sleep=sleep)
        response, call.attempts = await call_with_retries(
            guarded_attempt, policy=policy, deadline=deadline, sleep=sleep, may_retry=lambda: not emitted
        )
        return response
    except asyncio.CancelledError:
        raise CancelledError(f"cancelled by {_received[-1] if _received else 'the caller'}") from None
    finally:
        _cancellable.clear()
        await llm.aclose()


def _estimate(llm: BaseLlm, request: LlmRequest, spec: TaskSpec) -> tuple[int, float | None]:
    """(tokens, USD) this call may use at most: the prompt estimate plus max_tokens, the same
    estimate llm-route ranks by. Rate limits and budget reservations are taken against it."""
    from .pricing import estimate_cost_usd

    prompt = estimate_prompt_tokens(spec)
    return prompt + request.max_tokens, estimate_cost_usd(llm.pricing_provider, request.model, prompt,
                                                          request.max_tokens)


# While a call is in flight, a signal cancels its task (so the provider's connection is closed
# and one "cancelled" result is written); outside it, the signal raises where the code stands.
_cancellable: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any] | None]] = []
_received: list[str] = []


def _on_signal(signum: int, _frame: Any) -> None:
    name = signal.Signals(signum).name
    _received.append(name)
    if _cancellable:
        loop, task = _cancellable[-1]
        if task is not None:
            loop.call_soon_threadsafe(task.cancel)
        return
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated


def _handle_termination() -> Any:
    """Install the SIGINT/SIGTERM handlers for the duration of run(); returns the undo."""
    try:
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals to the caller
        return lambda: None

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
