"""The forked process that runs one forwarded task.

It becomes the caller's executor process as far as the task can tell: the caller's environment
(replacing the daemon's entirely, so nothing leaks between tasks), working directory, umask, argv
and stdin/stdout/stderr, and the caller's process start for the deadline. Then it runs exactly the
code a one-shot executor runs (`cli.command.main`) and exits with its code.

It reports that code to its caller itself, right after closing the caller's stdin/stdout/stderr:
the caller can exit while the kernel is still tearing this process down (a few milliseconds for a
copy of the daemon), and the daemon's own report after reaping it is only needed when the task
dies without reporting (a signal).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import NoReturn

from ..cli import command
from ..config import process_start_monotonic
from .protocol import EXIT, STDIO_FDS, TaskRequest, encode_line


def run_task(request: TaskRequest, stdio: list[int], caller_pid: int, connection: socket.socket,
             close_inherited: Callable[[], None]) -> NoReturn:
    """Run the task in this (just forked) process, report its exit code on the caller's
    `connection`, and exit; never returns. `close_inherited` closes what else the daemon holds."""
    code = 1
    try:
        _become_caller(request, stdio, caller_pid, close_inherited)
        code = _run_command(request, process_start_monotonic(caller_pid))
    except BaseException:  # a failure to set up (a bug of ours): tell the caller on its stderr
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # the caller stopped reading
                stream.flush()
        # Once the caller has the code it exits, and the daemon, seeing it go, sends SIGTERM to
        # a task it believes orphaned: that must not turn this exit into a death by signal.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        for fd in STDIO_FDS:  # the caller's readers see EOF when the caller exits, not when we do
            os.close(fd)
        with contextlib.suppress(OSError):  # a few bytes into an empty buffer: never blocks
            connection.send(encode_line(EXIT, code))
        os._exit(code)  # skip the daemon's own clean-up (sockets, its atexit handlers)


def _become_caller(request: TaskRequest, stdio: list[int], caller_pid: int,
                   close_inherited: Callable[[], None]) -> None:
    # Signals: the defaults of a fresh interpreter (the runner installs its own while it runs).
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Out of the daemon's session: its terminal's job control is not the task's, and the caller's
    # terminal (when stdin is one) can be read without being this session's controlling terminal.
    os.setsid()
    for target, received in zip((0, 1, 2), stdio, strict=True):
        os.dup2(received, target)
    close_inherited()  # the listening socket, other callers' connections and descriptors
    for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
        if isinstance(stream, io.TextIOWrapper):
            # As the interpreter decides at start-up: line-buffered on a terminal (stderr always).
            stream.reconfigure(line_buffering=fd == 2 or os.isatty(fd))
    os.environ.clear()
    for name, value in request.environ.items():
        os.environb[name] = value
    time.tzset()  # TZ is the caller's too
    os.chdir(request.cwd)
    os.umask(request.umask)
    sys.argv = request.argv


def _run_command(request: TaskRequest, started: float) -> int:
    """What a one-shot executor runs, with its exit status as the interpreter would compute it.
    timeout_seconds counts from `started`, the caller's process start, not from this fork."""
    try:
        command.main(request.executor, request.program, started=started)
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        sys.stderr.write(f"{exit_.code}\n")
        return 1
    return 0
