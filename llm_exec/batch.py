"""Batch mode (`--batch`): many task specs as JSONL through one process.

Each non-blank input line is one task spec and gets exactly one result line, in input order: the
result object a one-shot executor would print for that spec (same schema, self-contained). Blank
lines are skipped. A line that is not a valid spec gets its exit-3 result; the batch goes on.

Up to `concurrency` calls are in flight at once (asyncio, one thread). Each line runs the
one-shot executor's `runner.Task`; what a batch shares is in `BatchSession`: one provider instance
(one SDK client, one connection pool) per provider class and settings, and one state store.
A line's `timeout_seconds` counts from when the line starts. Calls are never streamed (a spec's
`stream` is ignored): the output is result lines only.

The exit code keeps the 0-3 contract: 0 when every line succeeded; when every failed line has
the same code, that code; otherwise 1. SIGINT/SIGTERM cancel the lines in flight and every line
not started yet (each still gets a `cancelled` result, so there is one result per input line; the
rest of the input is read to its end for that) and the exit code is 1. A second signal stops
reading: lines not read by then get no result. An output nobody reads any more (`| head -1`)
cancels the batch the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from .config import Secrets
from .edge import internal_error, raising
from .errors import CancelledError, ConfigurationError, TaskSpecError
from .providers.base import BaseLlm
from .request import LlmRequest
from .result import Output, build_result
from .retry import Deadline, Sleep
from .runner import Session, Task, signal_received
from .state.guard import GuardConfig, SharedStore
from .task import TaskSpec, max_spec_bytes

DEFAULT_CONCURRENCY = 16
# Lines read ahead of the oldest result not yet written, per slot of concurrency: bounds memory
# when one slow line holds back the results of many fast lines after it.
READ_AHEAD_PER_SLOT = 8
MIN_READ_AHEAD = 256
GC_YOUNG_THRESHOLD = 20_000  # allocations between collections of the youngest generation (default 700)


@dataclass(frozen=True)
class BatchOptions:
    executor: str
    program: str
    input_path: str | None = None
    output_path: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    dry_run: bool = False
    # The progress line on stderr: None = when stderr is a terminal.
    progress: bool | None = None
    sleep: Sleep = field(default=asyncio.sleep, compare=False)


def batch_exit_code(codes: Iterable[int], *, cancelled: bool = False) -> int:
    """0 when every line succeeded; the failed lines' code when they all share one; else 1.
    A cancelled batch is 1."""
    failed = {code for code in codes if code}
    if cancelled or len(failed) > 1:
        return 1
    return failed.pop() if failed else 0


def read_lines(stream: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, content) of each non-blank line; content None for a line longer than `limit`
    bytes, which is read past in bounded pieces, never held whole."""
    number = 0
    while True:
        line = stream.readline(limit + 2)  # the spec, then "\n" or "\r\n"
        if not line:
            return
        number += 1
        if not line.endswith(b"\n") and len(line) == limit + 2:  # cut short: skip to its end
            while True:
                rest = stream.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, None
            continue
        content = line.rstrip(b"\r\n")
        if len(content) > limit:
            yield number, None
        elif content.strip():
            yield number, content


def run_batch(options: BatchOptions) -> int:
    """Run every task of the input; returns the batch's exit code."""
    session = BatchSession(options.executor, options.program, dry_run=options.dry_run, sleep=options.sleep)
    output = Output(options.output_path, session.secrets)
    try:
        source = open(options.input_path, "rb") if options.input_path not in (None, "-") else sys.stdin.buffer  # noqa: SIM115
    except OSError as exc:
        error = ConfigurationError(f"cannot read --input {options.input_path}: {exc.strerror or exc}",
                                   field="input", error_type="usage_error")
        session.log(session.secrets, f"{error.type}: {error.message} -> exit {error.exit_code}")
        output.result(build_result(provider=session.provider_cls.name, task=None, model=None, elapsed=0.0,
                                   attempts=0, error=error))
        output.close()
        return error.exit_code
    show = sys.stderr.isatty() if options.progress is None else options.progress
    if show:
        session.progress = Progress(options.program)
    thresholds = gc.get_threshold()
    # Every call allocates thousands of short-lived objects (SDK models, HTTP messages), nearly all
    # freed by reference counting: collecting the youngest generation after 20,000 allocations
    # rather than 700 saves CPU per task (measured: scripts/bench, README Performance).
    gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
    try:
        return asyncio.run(Batch(session, output, source, options.concurrency).run())
    finally:
        gc.set_threshold(*thresholds)
        output.close()
        if source is not sys.stdin.buffer:
            source.close()
        from . import telemetry

        if telemetry.active():
            telemetry.flush()  # one span per line was recorded; delivered once, after the last result


class BatchSession(Session):
    """Shares across lines what a one-shot executor makes per task: provider instances (keyed by
    provider class, key variable, endpoint, options and timeout) and the state store."""

    stream = False

    def __init__(self, executor: str, program: str, *, dry_run: bool = False, sleep: Sleep = asyncio.sleep) -> None:
        super().__init__(executor, program, dry_run=dry_run, sleep=sleep)
        self._providers: dict[tuple[Any, ...], BaseLlm] = {}
        self._store = SharedStore()
        self._guard_configs: dict[tuple[str, str | None], GuardConfig] = {}
        self._logged: set[str] = set()
        self.progress: Progress | None = None

    def log(self, secrets: Secrets, message: str) -> None:
        if message in self._logged:  # e.g. "state store unavailable", once per batch, not per line
            return
        self._logged.add(message)
        if self.progress is not None:
            self.progress.clear()
        super().log(secrets, message)
        if self.progress is not None:
            self.progress.draw(force=True)

    def guard_config(self, provider: str, spec_cache: str | None) -> GuardConfig:
        key = (provider, spec_cache)  # the environment it is read from does not change during a batch
        config = self._guard_configs.get(key)
        if config is None:
            config = self._guard_configs[key] = super().guard_config(provider, spec_cache)
        return config

    def provider(self, cls: type[BaseLlm], spec: TaskSpec, request: LlmRequest, deadline: Deadline) -> BaseLlm:
        # The SDK client's own timeout is the line's whole timeout: each attempt is bounded by the
        # line's deadline anyway (retry.call_with_retries), so only lines with the same
        # timeout_seconds share a client, and none is cut short by another line's setting.
        key = (cls, spec.get("api_key_env"), spec.get("api_endpoint"), spec.timeout_seconds,
               json.dumps(request.options, sort_keys=True) if request.options else "")
        llm = self._providers.get(key)
        if llm is None:
            llm = self._providers[key] = cls.from_env(
                api_key_env=spec.get("api_key_env"), api_endpoint=spec.get("api_endpoint"),
                timeout=spec.timeout_seconds, options=request.options, key_optional=self.dry_run)
        return llm

    async def release(self, llm: BaseLlm) -> None:
        """Kept for the next line; closed by `aclose` when the batch ends."""

    def shared_store(self) -> SharedStore:
        return self._store

    async def aclose(self) -> None:
        providers, self._providers = list(self._providers.values()), {}
        for llm in providers:
            try:
                await llm.aclose()
            except Exception as exc:  # closing is best effort: every result is already written
                if raising():
                    raise
                self.log(self.secrets, f"closing {llm.name} client: {type(exc).__name__}: {exc}")
        self._store.close()


class Batch:
    """The lines of one batch: read by a thread, run under a semaphore, written in order."""

    def __init__(self, session: BatchSession, output: Output, source: IO[bytes], concurrency: int) -> None:
        self.session = session
        self.output = output
        self.source = source
        self.concurrency = concurrency
        self.progress = session.progress
        # Filled in by run(), on the event loop.
        self.loop: asyncio.AbstractEventLoop | None = None
        self.slots: asyncio.Semaphore | None = None
        self.finished: asyncio.Event | None = None
        self.read_ahead = threading.Semaphore(max(MIN_READ_AHEAD, concurrency * READ_AHEAD_PER_SLOT))
        self.stop_reading = threading.Event()
        self.accepting = True
        self.dispatched = 0  # lines handed to the loop so far
        self.total: int | None = None  # known at the end of the input
        self.next_to_write = 0
        self.waiting: dict[int, tuple[dict[str, Any], Secrets]] = {}
        self.codes: list[int] = []
        self.lines: set[asyncio.Task[None]] = set()
        self.running: set[asyncio.Task[Any]] = set()
        self.cancelled: str | None = None
        self.crashed: BaseException | None = None

    async def run(self) -> int:
        self.loop = loop = asyncio.get_running_loop()
        self.slots = asyncio.Semaphore(self.concurrency)
        self.finished = asyncio.Event()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig.name)
                handled.append(sig)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
                pass
        threading.Thread(target=self._read, name="llm-exec-batch-input", daemon=True).start()
        try:
            await self.finished.wait()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            self.stop_reading.set()
            await self.session.aclose()
            if self.progress is not None:
                self.progress.finish()
        if self.crashed is not None:
            raise self.crashed
        return batch_exit_code(self.codes, cancelled=self.cancelled is not None)

    # -- input (a thread: reading must never block the loop) ---------------------------------------

    def _read(self) -> None:
        count = 0
        try:
            for number, content in read_lines(self.source, max_spec_bytes()):
                while not self.read_ahead.acquire(timeout=0.25):
                    if self.stop_reading.is_set():
                        return
                if self.stop_reading.is_set():
                    return
                self._to_loop(self._start, count, number, content)
                count += 1
        except (OSError, ValueError) as exc:  # the input broke off: what was read is still run
            self._to_loop(self.session.log, self.session.secrets, f"reading the input failed: {exc}")
        finally:
            self._to_loop(self._end_of_input, count)

    def _to_loop(self, callback: Callable[..., Any], *args: Any) -> None:
        assert self.loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: the batch is over
            self.loop.call_soon_threadsafe(callback, *args)

    def _start(self, index: int, number: int, content: bytes | None) -> None:
        if not self.accepting:
            return
        assert self.loop is not None
        self.dispatched = index + 1
        if self.progress is not None:
            self.progress.read = self.dispatched
        line = self.loop.create_task(self._line(index, number, content))
        self.lines.add(line)
        line.add_done_callback(self._line_done)

    def _end_of_input(self, count: int) -> None:
        if self.accepting:
            self.total = count
            if self.progress is not None:
                self.progress.total = count
            self._check_finished()

    # -- one line --------------------------------------------------------------------------------

    async def _line(self, index: int, number: int, content: bytes | None) -> None:
        assert self.slots is not None
        task = Task(self.session, time.monotonic(), label=f"line {number}")

        def read() -> bytes:
            if content is None:
                limit = max_spec_bytes()
                raise TaskSpecError(f"task spec is larger than the limit of {limit} bytes (LLM_EXEC_MAX_SPEC_BYTES)")
            return content

        started = False
        if self.cancelled is None:
            async with self.slots:
                if self.cancelled is None:
                    started = True
                    task.started = time.monotonic()  # the line's deadline counts from here
                    current = asyncio.current_task()
                    assert current is not None
                    self.running.add(current)
                    try:
                        if task.prepare(read):
                            await task.execute()
                    finally:
                        self.running.discard(current)
        if not started:
            task.started = time.monotonic()  # it never ran: no execution time
            if task.parse(read):
                task.fail(CancelledError(f"cancelled by {self.cancelled} before it started"))
        try:
            result = task.result()
        except Exception as exc:  # a bug of ours: this line still gets its one result
            error = internal_error(exc, lambda message: self.session.log(task.secrets, f"line {number}: {message}"))
            result = build_result(provider=task.call.provider, task=task.call.task, model=task.call.model,
                                  elapsed=time.monotonic() - task.started, attempts=task.call.attempts, error=error)
        self._finished(index, result, task.secrets)

    def _line_done(self, line: asyncio.Task[None]) -> None:
        self.lines.discard(line)
        if not line.cancelled() and line.exception() is not None and self.crashed is None:
            self.crashed = line.exception()  # only under LLM_EXEC_RAISE: stop and re-raise
            assert self.finished is not None
            self.finished.set()

    def _finished(self, index: int, result: dict[str, Any], secrets: Secrets) -> None:
        self.waiting[index] = (result, secrets)
        if self.progress is not None:
            self.progress.count(result)
        while self.next_to_write in self.waiting:
            result, secrets = self.waiting.pop(self.next_to_write)
            self.output.result(result, secrets=secrets)
            self.codes.append(result.get("exit_code", 0))
            self.next_to_write += 1
            self.read_ahead.release()
        if self.output.broken and self.cancelled is None:  # `| head`: no call is worth making any more
            self._cancel("a closed output")
        self._check_finished()

    def _check_finished(self) -> None:
        assert self.finished is not None
        if self.total is not None and self.next_to_write >= self.total:
            self.finished.set()

    # -- signals -----------------------------------------------------------------------------------

    def _on_signal(self, name: str) -> None:
        signal_received(name)
        if self.cancelled is None:
            self._cancel(name)
            return
        # A second signal: stop reading; what was read still gets its (cancelled) result.
        self.session.log(self.session.secrets, f"{name} again: no longer reading the input")
        self.stop_reading.set()
        self.accepting = False
        self.total = self.dispatched
        self._check_finished()

    def _cancel(self, reason: str) -> None:
        self.cancelled = reason
        self.session.log(self.session.secrets, f"{reason}: cancelling {len(self.running)} running line(s); "
                                               "lines not started are written as cancelled")
        for line in list(self.running):
            line.cancel()


class Progress:
    """One self-rewriting line on stderr (a terminal): done/total, errors, tokens, cost, rate."""

    WIDTH = 24

    def __init__(self, program: str, interval: float = 0.1) -> None:
        self.program = program
        self.interval = interval
        self.started = time.monotonic()
        self.drawn_at = 0.0
        self.done = self.errors = self.tokens = 0
        self.cost = 0.0
        self.read = 0
        self.total: int | None = None

    def count(self, result: dict[str, Any]) -> None:
        self.done += 1
        if result.get("exit_code"):
            self.errors += 1
        self.tokens += result.get("tokens_used") or 0
        self.cost += result.get("cost_usd") or 0.0
        self.draw()

    def line(self) -> str:
        total = self.total if self.total is not None else self.read
        filled = int(self.WIDTH * self.done / total) if total else 0
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        of = f"{total:,}" if self.total is not None else f"{total:,}+"
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        return (f"{self.program}: [{bar}] {self.done:,}/{of} done  {self.errors:,} errors  {self.tokens:,} tokens  "
                f"${self.cost:.4f}  {rate:.0f}/s")

    def draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.drawn_at < self.interval:
            return
        self.drawn_at = now
        self._write("\r\x1b[K" + self.line())

    def clear(self) -> None:
        self._write("\r\x1b[K")

    def finish(self) -> None:
        self._write("\r\x1b[K" + self.line() + "\n")

    @staticmethod
    def _write(text: str) -> None:
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
