"""One task, start to finish: input bytes -> TaskSpec -> provider call under the retry policy
and the deadline -> one result object -> exit code.

This is the whole behaviour of an executor; the click commands only parse flags and call `run`
(one task) or `llm_exec.batch.run_batch` (JSONL, many tasks). Both drive the same `Task`:
`prepare` (parse, provider, guard, cache), `execute` (the call), `result` (one result object).
What differs lives in `Session`: a one-shot session makes a provider per task and closes it after
the call, and the guard opens the state store itself; a batch session shares both across lines.

Every path, including a bug of ours, ends in exactly one result object on the output and the
documented exit code. Diagnostics go to stderr, redacted.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from . import telemetry
from .config import Secrets, process_start_monotonic
from .errors import CancelledError, ConfigurationError, ContentFilterError, LlmError
from .providers.base import BaseLlm
from .providers.registry import get_provider
from .request import LlmRequest
from .response import LlmResponse
from .result import Output, build_result
from .retry import Deadline, RetryPolicy, Sleep, call_with_retries
from .task import TaskSpec, estimate_prompt_tokens, parse_task, read_spec

if TYPE_CHECKING:
    from .aliases import Alias, AliasTable
    from .state.guard import Guard, GuardConfig, SharedStore

# Captured at import, the earliest point our code runs; the deadline itself counts from the
# process start reported by the OS (see config.process_start_monotonic).
PROCESS_START = process_start_monotonic()


@dataclass(frozen=True)
class RunOptions:
    # The registered provider name (providers/registry.py); None: the task's `provider` field names it.
    executor: str | None
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
    model_alias: str | None = None  # the name the task used, when an alias resolved it
    warnings: list[dict[str, Any]] = field(default_factory=list)
    # The GenAI operation, first request to the call's end (the ledger's operation_seconds).
    first_request: float | None = None
    call_ended: float | None = None


def _log(program: str, secrets: Secrets, message: str) -> None:
    try:
        sys.stderr.write(secrets.redact(f"{program}: {message}\n"))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr closed: nothing else to do


class Session:
    """What the tasks of one process share. This one is the one-shot executor's: a provider
    instance per task, closed after its call, and a guard that opens the state store itself.
    `llm_exec.batch.BatchSession` shares providers and the store across lines instead."""

    #: Whether deltas are written as they arrive; None = as each spec's `stream` says.
    stream: bool | None = None

    def __init__(self, executor: str, program: str, *, stream: bool = False, dry_run: bool = False,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.executor = executor
        self.provider_cls = get_provider(executor)
        self.program = program
        self._aliases: AliasTable | None = None
        self._aliases_read = False
        self.secrets = Secrets.from_env(self.provider_cls.key_env_vars)
        if stream:
            self.stream = True
        self.dry_run = dry_run
        self.sleep = sleep

    def log(self, secrets: Secrets, message: str) -> None:
        _log(self.program, secrets, message)

    def aliases(self) -> AliasTable | None:
        """The user's model aliases (aliases.yaml), read once per process; None without a file; a
        bad file is exit 2."""
        if not self._aliases_read:
            self._aliases, self._aliases_read = user_aliases(), True
        return self._aliases

    def provider(self, cls: type[BaseLlm], spec: TaskSpec, request: LlmRequest, deadline: Deadline) -> BaseLlm:
        return cls.from_env(
            api_key_env=spec.get("api_key_env"),
            api_endpoint=spec.get("api_endpoint"),
            timeout=max(0.001, deadline.remaining()),
            options=request.options,
            key_optional=self.dry_run,  # nothing is sent: a missing key is reported, not fatal
        )

    async def release(self, llm: BaseLlm) -> None:
        """The call is over: a one-shot provider holds its SDK client only for it."""
        await llm.aclose()

    def shared_store(self) -> SharedStore | None:
        """None: each guard opens (and closes) the store itself."""
        return None

    def guard_config(self, provider: str, spec_cache: str | None) -> GuardConfig:
        from .state.guard import GuardConfig

        return GuardConfig.from_env(provider, spec_cache)


class Task:
    """One task through its phases; any failure on the way is recorded, never raised (a bug of
    ours is re-raised under LLM_EXEC_RAISE=1), so `result()` always has one object to give."""

    def __init__(self, session: Session, started: float, *, label: str | None = None,
                 emit: Callable[[str, Secrets], None] | None = None) -> None:
        self.session = session
        self.started = started
        self.label = label  # "line 12" in a batch, for messages on stderr
        self.emit = emit  # where stream deltas go
        self.secrets = session.secrets
        self.call = _Call(provider=session.provider_cls.name)
        self.spec: TaskSpec | None = None
        self.request: LlmRequest | None = None
        self.llm: BaseLlm | None = None
        self.deadline: Deadline | None = None
        self.response: LlmResponse | None = None
        self.cost: float | None = None
        self.error: LlmError | None = None
        self.guard: Guard | None = None
        self.state: str | None = None  # unknown until the call is set up
        self.cached = False
        self.dry_run: dict[str, Any] | None = None
        self.model_provider: type[BaseLlm] | None = None  # the class that serves the task's model
        # Kept only when traces or metrics are asked for (telemetry.active() reads three variables).
        self.telemetry: telemetry.CallRecord | None = None
        if telemetry.active():
            self.telemetry = telemetry.CallRecord(
                started_ns=time.time_ns() - int((time.monotonic() - started) * 1e9))

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Turn whatever goes wrong inside into this task's error."""
        try:
            yield
        except LlmError as exc:
            self.error = exc
        except KeyboardInterrupt:
            self.error = CancelledError("cancelled by SIGINT")
        except asyncio.CancelledError:
            self.error = CancelledError(f"cancelled by {_received[-1] if _received else 'the caller'}")
        except Terminated:
            self.error = CancelledError("cancelled by SIGTERM")
        except Exception as exc:  # a bug of ours: still one valid result, and a traceback on stderr
            from .edge import internal_error

            self.error = internal_error(exc, self._log)

    def _log(self, message: str) -> None:
        self.session.log(self.secrets, f"{self.label}: {message}" if self.label else message)

    # -- phases -------------------------------------------------------------------------------------

    def parse(self, read: Callable[[], bytes]) -> bool:
        """Read and validate the spec; False when it is not a valid task (the error is recorded)."""
        with self.recording():
            spec = parse_task(read())
            self.spec = spec
            self.call.task = dict(spec.raw)
            if spec.get("api_key_env"):
                self.secrets = Secrets.from_env([*self.session.provider_cls.key_env_vars, spec.get("api_key_env")])
            return True
        return False

    def prepare(self, read: Callable[[], bytes]) -> bool:
        """Parse and set the call up; True when the provider call is still to be made (False: a
        failure, a dry run or a cached answer, already recorded)."""
        if not self.parse(read):
            return False
        with self.recording():
            return self._set_up()
        return False

    def _set_up(self) -> bool:
        session, spec = self.session, self.spec
        assert spec is not None
        option_fields = session.provider_cls.option_fields
        provider_cls = session.provider_cls.for_options(spec.provider_options(option_fields))
        self.call.provider = provider_cls.name
        request = spec.to_request(provider_cls.default_model, option_fields)
        self.model_provider = provider_cls  # from here on, the model is known: deprecation is reported
        aliases = session.aliases()
        alias = aliases.resolve(spec.get("model")) if aliases else None
        if alias is not None:
            check_alias_provider(alias, session.executor)
            request = replace(request, model=alias.model)
            self.call.model_alias = alias.name
        if session.stream is not None and request.stream != session.stream:
            request = replace(request, stream=session.stream)
        self.request = request
        self.call.model = request.model
        self.deadline = Deadline(self.started + spec.timeout_seconds)
        self.llm = llm = session.provider(provider_cls, spec, request, self.deadline)
        if session.dry_run:
            self.dry_run = {"dry_run": True, "provider": llm.name, "model": request.model,
                            "api_key": key_status(llm), "request": llm.describe(request)}
            return False
        self.guard = guard = self._open_guard(llm, request, spec)
        self.state = guard.status if guard else "off"
        response = guard.cached_response(request) if guard else None
        if response is None:
            return True
        self.response, self.cached = response, True
        if request.stream and response.content and self.emit is not None:
            self.emit(response.content, self.secrets)  # a replayed stream arrives as one delta
        return False

    async def execute(self) -> None:
        """The provider call under the retry policy and the guard, then its price."""
        with self.recording():
            llm, request = self.llm, self.request
            assert llm is not None and request is not None
            response = await self._execute()
            self.response = response
            if llm.pricing_provider is not None:  # a local model has no price
                from .pricing import cost_usd  # deferred: it may load genai-prices

                self.cost = cost_usd(llm.pricing_provider, (response.model, request.model), response.usage)
            if self.guard:
                self.guard.store_response(request, response)

    def fail(self, error: LlmError) -> None:
        self.error = error

    def result(self) -> dict[str, Any]:
        """The result object (the dry-run object for --dry-run); settles the guard."""
        if self.dry_run is not None:
            return self.dry_run
        response, error, call, guard = self.response, self.error, self.call, self.guard
        if self.model_provider is not None and call.model and not call.warnings:
            call.warnings = self._deprecation_warnings(self.model_provider, call.model)
        if error is None and response is not None and response.finish_reason == "content_filter":
            error = self.error = ContentFilterError("the provider filtered the answer (finish_reason content_filter)")
        if error is not None:
            call.attempts = error.attempts if error.attempts is not None else call.attempts
            field = f" (field {error.field})" if error.field else ""
            self._log(f"{error.type}: {error.message}{field} -> exit {error.exit_code}")
        result = build_result(
            provider=call.provider,
            task=call.task,
            model=call.model,
            elapsed=time.monotonic() - self.started,
            attempts=call.attempts,
            response=response,
            cost=self.cost,
            error=error,
            partial_output="".join(call.partial) if call.partial else None,
            cached=self.cached,
            state=guard.status if guard else self.state,
            model_alias=call.model_alias,
            warnings=call.warnings,
        )
        if guard:
            guard.finish(ledger_row(result, call), response.usage if response and not self.cached else None,
                         self.cost)
            guard.close()
        if self.telemetry is not None:
            record = self.telemetry
            record.result, record.spec, record.request, record.secrets = result, call.task, self.request, self.secrets
            if self.llm is not None:
                record.provider_cls, record.base_url = type(self.llm), self.llm.base_url
            record.ended_ns = time.time_ns()
            telemetry.record(record)
        return result

    def _deprecation_warnings(self, provider_cls: type[BaseLlm], model: str) -> list[dict[str, Any]]:
        """A `model_deprecated` warning (and one stderr line) when the provider, genai-prices or the
        alias file says the model is going away. Never fails the task: the provider decides."""
        aliases = self.session.aliases()
        note = aliases.note_for(self.call.model_alias, model) if aliases else None
        from .models import deprecation, deprecation_warning

        found = deprecation(provider_cls, model)
        if note is None and found is None:
            return []
        warning = deprecation_warning(model, note, found)
        self._log(f"warning: {warning['message']}")
        return [warning]

    # -- the call -----------------------------------------------------------------------------------

    def _open_guard(self, llm: BaseLlm, request: LlmRequest, spec: TaskSpec) -> Guard | None:
        """The shared-state guard for this call, or None when every protection is off (no import cost)."""
        from .state import state_enabled

        if not state_enabled() and (spec.get("cache") or os.environ.get("LLM_EXEC_CACHE", "off")) == "off":
            return None
        from .state.guard import CallIdentity, Guard, key_fingerprint

        config = self.session.guard_config(llm.name, spec.get("cache"))
        identity = CallIdentity(llm.name, request.model, llm.base_url or "", key_fingerprint(llm.api_key))
        return Guard(config, identity, lambda message: self.session.log(self.secrets, message),
                     shared=self.session.shared_store())

    async def _execute(self) -> LlmResponse:
        """The provider call under the retry policy (and the shared-state guard); a cancelled
        task (SIGINT/SIGTERM) becomes a `cancelled` error."""
        llm, request, spec, deadline, guard = self.llm, self.request, self.spec, self.deadline, self.guard
        assert llm is not None and request is not None and spec is not None and deadline is not None
        call, sleep, emit, secrets = self.call, self.session.sleep, self.emit, self.secrets
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
            call.first_request = call.first_request or time.monotonic()
            if self.telemetry is None:
                return await one_attempt()
            timing = telemetry.Attempt(started_ns=time.time_ns())
            self.telemetry.attempts.append(timing)
            try:
                return await one_attempt()
            except BaseException as exc:
                timing.error_type = exc.type if isinstance(exc, LlmError) else type(exc).__name__
                raise
            finally:
                timing.ended_ns = time.time_ns()

        async def one_attempt() -> LlmResponse:
            if not request.stream:
                return await llm.generate(request)
            final: LlmResponse | None = None
            async for item in llm.stream(request):
                if isinstance(item, LlmResponse):
                    final = item
                else:
                    emitted.append(item)
                    if emit is not None:
                        emit(item, secrets)
            if final is None:  # a provider bug: streams must end with their response
                raise LlmError("stream ended without a final response")
            return final

        try:
            if guard is not None:
                tokens, cost = _estimate(llm, request, spec, guard.needs_cost_estimate)
                await guard.admit(tokens, cost, remaining=deadline.remaining, sleep=sleep)
            # Once deltas are on stdout they cannot be taken back: no retry after the first one.
            response, call.attempts = await call_with_retries(
                guarded_attempt, policy=policy, deadline=deadline, sleep=sleep, may_retry=lambda: not emitted
            )
            return response
        except asyncio.CancelledError:
            raise CancelledError(f"cancelled by {_received[-1] if _received else 'the caller'}") from None
        finally:
            call.call_ended = time.monotonic()
            await self.session.release(llm)


def run(options: RunOptions) -> int:
    """Run one task; returns the exit code (0 success, 1 execution, 2 configuration, 3 task spec)."""
    started = options.started if options.started is not None else time.monotonic()
    restore = _handle_termination()
    # No cyclic garbage collection during one task: importing an SDK allocates millions of objects,
    # almost none of them garbage, and the collector's passes over them cost ~10 % of the import
    # (claude: -80 ms). What a call allocates afterwards is freed by reference counting: peak RSS
    # is the same with and without the collector, a 30,000-chunk stream included (measured).
    # Turning it back on mid-stream would not do: its first pass would walk the whole SDK (~40 ms).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run(options, started)
    finally:
        if collecting:
            gc.enable()
        restore()


def _run(options: RunOptions, started: float) -> int:
    read: Callable[[], bytes] = lambda: read_spec(options.input_path)  # noqa: E731
    executor = options.executor
    if executor is None:
        try:
            data = read()
            executor = provider_named_by(data)
        except LlmError as error:
            return _early_failure(options, started, error)
        read = lambda: data  # noqa: E731
    session = Session(executor, options.program, stream=options.stream, dry_run=options.dry_run,
                      sleep=options.sleep)
    output = Output(options.output_path, session.secrets, pretty=options.pretty)
    task = Task(session, started, emit=output.delta)
    if task.prepare(read):
        with task.recording():  # a signal can also land outside the task, in the event loop itself
            asyncio.run(_cancellable(task.execute()))
    result = task.result()
    output.result(result, secrets=task.secrets)
    output.close()
    if task.telemetry is not None:
        telemetry.flush()  # after the result is out: a slow collector never delays it
    return result.get("exit_code", 0)


def user_aliases() -> AliasTable | None:
    """The user's alias file, or None when there is none. Checked with one stat before the alias
    module is imported: almost no run has a file, and every run comes through here."""
    from .config import user_aliases_file

    path, named = user_aliases_file()
    if not named and not os.path.exists(path):
        return None
    from .aliases import load_user_aliases

    return load_user_aliases()


def check_alias_provider(alias: Alias, executor: str) -> None:
    """An alias that names a provider only serves that provider's executor."""
    if alias.provider is None:
        return
    from .providers.registry import find_entry

    if find_entry(alias.provider).name != executor:
        raise ConfigurationError(
            f"model alias {alias.name!r} ({alias.source}) is for provider {alias.provider}, not {executor}: "
            f"run it with `llm-exec run` (the alias picks the provider)",
            field="model", error_type="alias_provider_mismatch")


def key_status(llm: BaseLlm) -> str:
    """For a dry run: "set", "missing" (a real call would be exit 2) or "not required"."""
    if llm.api_key:
        return "set"
    return "missing" if llm.requires_key else "not required"


def provider_named_by(data: bytes) -> str:
    """The provider a task names in its `provider` field, else the one its model alias names
    (`llm-exec run` without --provider)."""
    spec = parse_task(data)  # a spec error is reported as such, before any provider is known
    name = spec.get("provider")
    aliases = user_aliases() if not name else None
    alias = aliases.resolve(spec.get("model")) if aliases else None
    if alias is not None and alias.provider:
        name = alias.provider  # `model: fast` with fast: gpt:gpt-5.4-mini runs gpt
    if not name:
        raise ConfigurationError("no provider given: pass --provider NAME, set LLM_EXEC_PROVIDER, or name one in"
                                 " the task's `provider` field (`llm-exec providers` lists them)",
                                 field="provider", error_type="missing_provider")
    get_provider(name)  # an unknown or broken provider is a configuration error, named here
    return str(name)


def _early_failure(options: RunOptions, started: float, error: LlmError) -> int:
    """One result for a task that failed before its provider was known."""
    secrets = Secrets.from_env()
    _log(options.program, secrets, f"{error.type}: {error.message} -> exit {error.exit_code}")
    output = Output(options.output_path, secrets, pretty=options.pretty)
    output.result(build_result(provider=None, task=None, model=None, elapsed=time.monotonic() - started,
                               attempts=0, error=error))
    output.close()
    return error.exit_code


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
    # None when no request went out (cache hit, open circuit): the metrics' operation duration.
    row["operation_seconds"] = (round(call.call_ended - call.first_request, 6)
                                if call.first_request is not None and call.call_ended is not None else None)
    task = call.task or {}
    row["prompt"] = task.get("prompt") or task.get("description")
    return row


def _estimate(llm: BaseLlm, request: LlmRequest, spec: TaskSpec, with_cost: bool) -> tuple[int, float | None]:
    """(tokens, USD) this call may use at most: the prompt estimate plus max_tokens, the same
    estimate llm-route ranks by. Rate limits and budget reservations are taken against it; the
    cost is only worked out when a budget needs it."""
    prompt = estimate_prompt_tokens(spec)
    if not with_cost:
        return prompt + request.max_tokens, None
    from .pricing import estimate_cost_usd

    return prompt + request.max_tokens, estimate_cost_usd(llm.pricing_provider, request.model, prompt,
                                                          request.max_tokens)


# While a call is in flight, a signal cancels its task (so the provider's connection is closed
# and one "cancelled" result is written); outside it, the signal raises where the code stands.
_in_flight: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any] | None]] = []
# The signals received, newest last: a cancelled result names the one that cancelled it.
_received: list[str] = []


def signal_received(name: str) -> None:
    """Note a signal handled elsewhere (batch mode), so the results it cancels name it."""
    _received.append(name)


async def _cancellable(call: Any) -> None:
    """Await `call` (the one-shot executor's provider call) with SIGINT/SIGTERM cancelling it."""
    _in_flight.append((asyncio.get_running_loop(), asyncio.current_task()))
    try:
        await call
    finally:
        _in_flight.clear()


def _on_signal(signum: int, _frame: Any) -> None:
    name = signal.Signals(signum).name
    _received.append(name)
    if _in_flight:
        loop, task = _in_flight[-1]
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
