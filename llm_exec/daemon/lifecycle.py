"""Starting, probing and stopping a daemon: one per socket, never two, never a stale socket left
blocking a start.

A start takes an exclusive lock (`<socket>.lock`, held for the daemon's life) before it looks at
the socket, so two daemons starting at once cannot both decide the socket is stale; a socket
nothing answers on is then removed. Unless --foreground, the daemon detaches (double fork,
setsid) after the checks and before the warm-up, and the starting command returns once the
daemon listens, so `llm-exec-daemon && llm-exec-claude ...` is served warm.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable
from typing import TextIO

from .protocol import default_socket_dir
from .server import STOP_GRACE_SECONDS, Daemon, peer_credentials

READY = b"ready"
READY_TIMEOUT_SECONDS = 120.0  # the warm-up imports every SDK: ~3 s here, far more on a cold disk


class StartError(Exception):
    """The daemon cannot start; the message says why."""


def answering_pid(path: str) -> int | None:
    """The pid of the daemon listening on `path`, None when nothing answers there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return None
        pid, _, _ = peer_credentials(probe)
        return pid


def start(path: str, *, foreground: bool, log_path: str | None) -> int:
    """Run a daemon on `path`: in this process, logging to stderr (foreground), or detached,
    logging to `log_path` (default: the socket's path + ".log"). Returns the exit code."""
    _ensure_standard_streams()  # first: a descriptor opened while 0-2 are closed would take their place
    path = os.path.abspath(path)  # a detached daemon works from /
    _prepare_directory(path)
    lock = _lock(path)
    _remove_stale_socket(path)
    ready = None if foreground else _detach(log_path or f"{path}.log")
    log = _logger(sys.stderr)
    from .warm import warm_up  # imports every SDK: only once the checks have passed

    daemon = Daemon(path, log, private_fds=[lock])
    warm_up(log)
    daemon.listen()
    log(f"listening on {path}")
    if ready is not None:
        os.write(ready, READY + b" %d\n" % os.getpid())
        os.close(ready)
    daemon.serve()
    log("stopped")
    return 0


def stop(path: str) -> int:
    """SIGTERM the daemon on `path` and wait until it has cancelled its tasks and exited."""
    pid = answering_pid(path)
    if pid is None:
        print(f"llm-exec-daemon: nothing answers on {path}", file=sys.stderr)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        print(f"llm-exec-daemon: pid {pid} still runs after SIGTERM", file=sys.stderr)
        return 1
    print(f"llm-exec-daemon: stopped pid {pid}", file=sys.stderr)
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _prepare_directory(path: str) -> None:
    """Create the socket's directory (0700). The default directories are ours alone: one another
    user made, or that others can enter, could hand our callers someone else's socket."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if directory != default_socket_dir(os.environ):
        return
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise StartError(f"{directory} is not a directory owned by this user; remove it or set LLM_EXEC_DAEMON")
    if info.st_mode & 0o077:
        os.chmod(directory, 0o700)


def _lock(path: str) -> int:
    lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        pid = answering_pid(path)
        running = f"already running (pid {pid})" if pid else "starting"
        raise StartError(f"another llm-exec-daemon is {running} on {path}") from None
    return lock


def _remove_stale_socket(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise StartError(f"{path} exists and is not a socket; not touching it")
    pid = answering_pid(path)
    if pid is not None:  # a daemon without our lock (another installation): leave it be
        raise StartError(f"another daemon answers on {path} (pid {pid})")
    os.unlink(path)  # left behind by a daemon that was killed


def _detach(log_path: str) -> int:
    """Become a background daemon; returns the pipe on which to report readiness. The starting
    process waits for that report, prints where the daemon listens and exits with 0 (or 1 when the
    daemon failed to start: its log says why)."""
    read_end, write_end = os.pipe()
    first = os.fork()
    if first > 0:
        os.close(write_end)
        report = _read_report(read_end)
        os.waitpid(first, 0)
        if report.startswith(READY):
            print(f"llm-exec-daemon: listening (pid {report.split()[1].decode()}); log: {log_path}", file=sys.stderr)
            os._exit(0)
        print(f"llm-exec-daemon: failed to start; see {log_path}", file=sys.stderr)
        os._exit(1)
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)  # the daemon is now no session leader: it can never get a controlling terminal
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for target, source in ((0, null), (1, null), (2, log)):
        os.dup2(source, target)
    os.close(null)
    os.close(log)
    return write_end


def _read_report(fd: int) -> bytes:
    """The daemon's one-line readiness report; empty if it died or did not report in time."""
    report = b""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while b"\n" not in report and select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
        chunk = os.read(fd, 256)
        if not chunk:
            break
        report += chunk
    return report


def _ensure_standard_streams() -> None:
    """Tasks get the caller's descriptors on 0-2 and use sys.stdin/stdout/stderr over them: both
    must exist even when this process was started with some of them closed."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # takes the lowest free number: often fd itself
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115 - lives as long as the process


def _logger(stream: TextIO) -> Callable[[str], None]:
    def log(message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            stream.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} llm-exec-daemon[{os.getpid()}]: {message}\n")
            stream.flush()  # flushed at once: a forked task must not inherit half a log line

    return log
