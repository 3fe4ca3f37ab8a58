"""Warm-up: a forked task must find everything it needs already imported and initialised.

Importing the SDK packages is only part of the cost. Each SDK imports more on first use (its
resources, streaming helpers, HTTP transport), and our runner loads jsonschema, the price data
and the state store when a call needs them. A task forked from a daemon that had merely imported
the packages pays all of that again, in every task (~250 ms of a ~290 ms call, measured). So the
daemon runs every executor once, for real, in its own process, against the bundled emulator:
plain, streaming, --dry-run and --help, with a throwaway state directory and stdout discarded.
Whatever these paths import or build lazily then exists in the daemon, and every fork inherits it.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..providers.registry import BUILTIN

WARM_UP_TASK = {"task_id": "llm-exec-daemon-warm-up", "prompt": "warm up", "max_tokens": 8}
WARM_UP_FLAGS: tuple[tuple[str, ...], ...] = ((), ("--stream",), ("--dry-run",), ("--help",))
THREAD_EXIT_TIMEOUT_SECONDS = 5.0
USER_DIRS_ENV = ("PATH", "HOME", "XDG_CACHE_HOME")


def warm_up(log: Callable[[str], None]) -> None:
    """Run every executor once in this process; then leave it with no thread but this one (fork
    copies only the calling thread: a lock another thread held would stay locked in the task)."""
    from ..cli import command
    from ..emulator import Emulator
    from ..emulator.env import client_env
    from .tls import TRUST_ENV, ContextStock

    started = time.monotonic()
    stock = ContextStock()
    stock.install()
    failures = []
    with tempfile.TemporaryDirectory(prefix="llm-exec-daemon-warm-up-") as scratch, Emulator() as emulator:
        spec = Path(scratch, "task.json")
        spec.write_text(json.dumps(WARM_UP_TASK))
        # This user's trust settings and caches, so that what is built now (TLS contexts, see tls.py;
        # the price card) is what the tasks of this user use. State goes to a throwaway store.
        kept = {name: os.environ[name] for name in (*TRUST_ENV, *USER_DIRS_ENV) if name in os.environ}
        env = {**kept, "LLM_EXEC_STATE_DIR": str(Path(scratch, "state")), **client_env(emulator.url)}
        # catch_warnings: leaving it resets the "already shown" records of every module, so a task
        # still shows a warning the warm-up happened to trigger, as its own process would.
        with _environment(env), _stdout_discarded(), warnings.catch_warnings():
            for executor in BUILTIN:
                for flags in WARM_UP_FLAGS:
                    argv = ["--input", str(spec), *flags]
                    with stock.counting():
                        code = _exit_code(command.main, executor, f"llm-exec-{executor}", argv)
                    if code != 0:
                        failures.append(f"{executor} {' '.join(flags)}".strip())
    stock.fill()
    # The OpenTelemetry SDK and exporter too (when the otel extra is installed): a task whose caller
    # asks for traces then exports them without importing anything in its fork.
    from ..telemetry import tracing

    tracing.warm_up()
    _wait_for_other_threads(log)
    # Objects that exist now are never collected: the collector then never writes to their pages,
    # so forked tasks keep sharing them with the daemon instead of copying them.
    gc.freeze()
    if failures:
        log(f"warm-up calls failed (tasks still run, only slower): {', '.join(failures)}")
    log(f"warm in {time.monotonic() - started:.2f} s")


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _stdout_discarded() -> Iterator[None]:
    """fd 1 on /dev/null (results, --help), so a foreground daemon's terminal stays clean."""
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _exit_code(main: Callable[[str, str, list[str]], None], executor: str, program: str, argv: list[str]) -> int:
    try:
        main(executor, program, argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


def _wait_for_other_threads(log: Callable[[str], None]) -> None:
    deadline = time.monotonic() + THREAD_EXIT_TIMEOUT_SECONDS
    for thread in threading.enumerate():
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log(f"thread {thread.name!r} still runs after the warm-up; forked tasks may deadlock on its locks")
