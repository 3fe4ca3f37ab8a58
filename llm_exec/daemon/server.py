"""The daemon's event loop: accept callers, fork one process per task, relay signals and exit codes.

One thread, one selector. Single-threaded on purpose: a fork copies only the forking thread, and
descriptors received for one caller must never be inherited by another caller's task (its stdout
would then stay open, and that caller would wait for an EOF until the other task ends). Here a
request is read, forked and its descriptors closed in one step of the loop; the child closes every
other descriptor the daemon holds.

Task exits are seen through pidfds (Linux >= 5.3), so there is no SIGCHLD handler to race with.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ConfigurationError
from ..providers.registry import find_entry
from .child import run_task
from .protocol import (
    EXIT,
    HEADER_SIZE,
    MAGIC,
    MAX_REQUEST_BYTES,
    REFUSED,
    SIGNAL,
    STARTED,
    STDIO_FDS,
    TaskRequest,
    decode_line,
    encode_line,
    identity,
)

_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
_FD = struct.Struct("i")
_MAX_CONTROL_LINE = 64
RELAYED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_GRACE_SECONDS = 10.0  # after SIGTERM, how long tasks get to write their `cancelled` result


@dataclass(eq=False)
class _Caller:
    """One connection: first a request being received, then the task it started."""

    connection: socket.socket | None
    pid: int
    received: bytearray = field(default_factory=bytearray)
    stdio: list[int] = field(default_factory=list)
    program: str = ""
    task_pid: int | None = None
    pidfd: int | None = None
    started_at: float = 0.0


def peer_credentials(connection: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket, as the kernel saw it."""
    pid, uid, gid = _CREDENTIALS.unpack(connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              _CREDENTIALS.size))
    return pid, uid, gid


class Daemon:
    def __init__(self, path: str, log: Callable[[str], None], private_fds: list[int]) -> None:
        """`private_fds`: descriptors of the daemon's own that its tasks must not keep open (a
        lock a task kept would block the next daemon while that task runs)."""
        self.path = path
        self.log = log
        self.private_fds = private_fds
        self.identity = identity()
        self.selector = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.callers: set[_Caller] = set()
        self.stop_deadline: float | None = None
        self._socket_inode: int | None = None
        self._wakeup_read, self._wakeup_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stop_requested = False

    # -- lifecycle --------------------------------------------------------------------------

    def listen(self) -> None:
        """Bind the socket, readable and writable by this user only, from the first moment."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous_umask = os.umask(0o177)
        try:
            listener.bind(self.path)
        finally:
            os.umask(previous_umask)
        os.chmod(self.path, 0o600)
        self._socket_inode = os.stat(self.path).st_ino
        listener.listen(128)
        listener.setblocking(False)
        self.listener = listener
        self.selector.register(listener, selectors.EVENT_READ, self._accept)

    def serve(self) -> None:
        """Serve until SIGTERM/SIGINT, then stop accepting, cancel the running tasks, relay their
        exit codes and return."""
        for signum in RELAYED_SIGNALS:
            signal.signal(signum, self._request_stop)
        signal.set_wakeup_fd(self._wakeup_write, warn_on_full_buffer=False)
        self.selector.register(self._wakeup_read, selectors.EVENT_READ, self._drain_wakeups)
        try:
            while self.listener is not None or self.callers:
                timeout = None if self.stop_deadline is None else max(0.0, self.stop_deadline - time.monotonic())
                for key, _ in self.selector.select(timeout):
                    self._dispatch(key.data)
                if self._stop_requested and self.listener is not None:
                    self._begin_stop()
                if self.stop_deadline is not None and time.monotonic() >= self.stop_deadline:
                    self._kill_remaining_tasks()
        finally:
            signal.set_wakeup_fd(-1)
            self._close_listener()

    def _dispatch(self, handler: Callable[[], None]) -> None:
        """One event. A bug of ours in handling one caller must not end the service for all the
        others: it is logged with its traceback (tests fail on any in the log) and the loop goes on."""
        try:
            handler()
        except Exception:
            self.log("internal error:\n" + traceback.format_exc().rstrip())

    def _request_stop(self, signum: int, _frame: object) -> None:
        self._stop_requested = True  # acted on by the loop, which the wakeup fd wakes

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wakeup_read, 512):
                pass

    def _begin_stop(self) -> None:
        self.log(f"stopping; cancelling {self._running_count()} running task(s)")
        self._close_listener()
        for caller in list(self.callers):
            if caller.task_pid is None:
                self._drop(caller)
            else:
                self._signal_task(caller, signal.SIGTERM)
        self.stop_deadline = time.monotonic() + STOP_GRACE_SECONDS

    def _kill_remaining_tasks(self) -> None:
        for caller in self.callers:
            self.log(f"task {caller.task_pid} ignored SIGTERM for {STOP_GRACE_SECONDS:.0f} s: killing it")
            self._signal_task(caller, signal.SIGKILL)
        self.stop_deadline = time.monotonic() + STOP_GRACE_SECONDS

    def _close_listener(self) -> None:
        if self.listener is None:
            return
        self.selector.unregister(self.listener)
        self.listener.close()
        self.listener = None
        # Remove the socket only if it is still ours (not one a newer daemon bound).
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == self._socket_inode:
                os.unlink(self.path)

    def _running_count(self) -> int:
        return sum(caller.task_pid is not None for caller in self.callers)

    # -- callers ----------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            connection, _ = self.listener.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return
        pid, uid, _ = peer_credentials(connection)
        if uid != os.getuid():  # mode 0600 already keeps others out; root is the exception
            self.log(f"refused a connection from uid {uid} (pid {pid})")
            connection.close()
            return
        connection.setblocking(False)
        caller = _Caller(connection, pid)
        self.callers.add(caller)
        self.selector.register(connection, selectors.EVENT_READ, lambda: self._readable(caller))

    def _readable(self, caller: _Caller) -> None:
        if caller.connection is None:  # closed by an earlier event of the same select()
            return
        try:
            data, ancillary, flags, _ = caller.connection.recvmsg(
                1 << 16, socket.CMSG_SPACE(len(STDIO_FDS) * _FD.size))
        except BlockingIOError:
            return
        except OSError:
            data, ancillary, flags = b"", [], 0
        received = [fd for level, kind, payload in ancillary if (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
                    for (fd,) in _FD.iter_unpack(payload[:len(payload) - len(payload) % _FD.size])]
        if caller.task_pid is not None or flags & socket.MSG_CTRUNC:
            _close_all(received)  # descriptors are only expected with the request
            received = []
        caller.stdio += received
        if not data:
            self._hung_up(caller)
            return
        caller.received += data
        if caller.task_pid is None:
            self._start_when_complete(caller)
        if caller.task_pid is not None:
            self._relay_signals(caller)

    def _start_when_complete(self, caller: _Caller) -> None:
        header = bytes(caller.received[:HEADER_SIZE])
        if len(header) == HEADER_SIZE and not header.startswith(MAGIC):
            self._refuse(caller, "not an llm-exec request")
            return
        size = int.from_bytes(header[len(MAGIC):], "big") if len(header) == HEADER_SIZE else 0
        if size > MAX_REQUEST_BYTES:
            self._refuse(caller, f"request larger than {MAX_REQUEST_BYTES} bytes")
            return
        if len(header) < HEADER_SIZE or len(caller.received) < HEADER_SIZE + size:
            return  # more to come
        body = bytes(caller.received[HEADER_SIZE:HEADER_SIZE + size])
        del caller.received[:HEADER_SIZE + size]
        try:
            request = TaskRequest(body)
        except ValueError as exc:
            self._refuse(caller, f"malformed request: {exc}")
            return
        problem = self._problem_with(request, caller)
        if problem:
            self._refuse(caller, problem)
        elif self._still_connected(caller):
            self._start(caller, request)
        else:
            self._drop(caller)  # the caller gave up waiting and runs the task itself

    def _problem_with(self, request: TaskRequest, caller: _Caller) -> str | None:
        if request.identity != self.identity:
            return f"serves {self.identity.decode(errors='replace')}, not {request.identity.decode(errors='replace')}"
        try:
            find_entry(request.executor)  # a built-in or an installed plugin
        except ConfigurationError as exc:
            return exc.message
        if len(caller.stdio) != len(STDIO_FDS):
            return f"expected {len(STDIO_FDS)} descriptors (stdin, stdout, stderr), got {len(caller.stdio)}"
        if not os.path.isdir(request.cwd):
            return "the caller's working directory is not visible to the daemon"
        if self.listener is None:
            return "stopping"
        return None

    def _still_connected(self, caller: _Caller) -> bool:
        assert caller.connection is not None
        try:
            return caller.connection.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True  # connected, nothing more sent yet
        except OSError:
            return False

    def _start(self, caller: _Caller, request: TaskRequest) -> None:
        assert caller.connection is not None
        # Nothing buffered may be written twice: once by us, once by the child.
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            self._refuse(caller, f"fork failed: {exc}")
            return
        if pid == 0:
            run_task(request, caller.stdio, caller.pid, caller.connection, lambda: self._close_in_child(caller))
        _close_all(caller.stdio)
        caller.stdio = []
        caller.task_pid, caller.program, caller.started_at = pid, request.program, time.monotonic()
        caller.pidfd = os.pidfd_open(pid)
        self.selector.register(caller.pidfd, selectors.EVENT_READ, lambda: self._task_exited(caller))
        self._send(caller, encode_line(STARTED, pid))

    def _relay_signals(self, caller: _Caller) -> None:
        while b"\n" in caller.received:
            line, _, rest = bytes(caller.received).partition(b"\n")
            caller.received = bytearray(rest)
            kind, value = decode_line(line)
            if kind == SIGNAL and value.isdigit() and int(value) in RELAYED_SIGNALS:
                self._signal_task(caller, int(value))
        if len(caller.received) > _MAX_CONTROL_LINE:
            caller.received.clear()  # not our client: ignore what it sends

    def _signal_task(self, caller: _Caller, signum: int) -> None:
        # The task is our child and only this loop reaps it, so its pid cannot have been reused.
        if caller.task_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(caller.task_pid, signum)

    def _hung_up(self, caller: _Caller) -> None:
        """The caller went away: killed (even by SIGKILL), and a task nobody waits for is
        cancelled, as the caller's own process would have been; or done, because the task
        reported its exit code itself and has signals blocked while it exits."""
        self._close_connection(caller)
        if caller.task_pid is None:
            self._drop(caller)
        else:
            self._signal_task(caller, signal.SIGTERM)

    def _task_exited(self, caller: _Caller) -> None:
        assert caller.task_pid is not None and caller.pidfd is not None
        _, status = os.waitpid(caller.task_pid, 0)
        code = os.waitstatus_to_exitcode(status)
        self.selector.unregister(caller.pidfd)
        os.close(caller.pidfd)
        self.log(f"{caller.program} (caller {caller.pid}, task {caller.task_pid}) exit {code} "
                 f"in {time.monotonic() - caller.started_at:.3f} s")
        self._send(caller, encode_line(EXIT, code))
        caller.task_pid = caller.pidfd = None
        self._drop(caller)

    def _refuse(self, caller: _Caller, reason: str) -> None:
        self.log(f"refused a request from pid {caller.pid}: {reason}")
        self._send(caller, encode_line(REFUSED, reason))
        self._drop(caller)

    def _send(self, caller: _Caller, message: bytes) -> None:
        if caller.connection is None:
            return
        # A few bytes into an empty socket buffer: never blocks. A caller that is gone is handled
        # when its hang-up is read.
        with contextlib.suppress(OSError):
            caller.connection.sendall(message)

    def _close_connection(self, caller: _Caller) -> None:
        if caller.connection is not None:
            self.selector.unregister(caller.connection)
            caller.connection.close()
            caller.connection = None

    def _drop(self, caller: _Caller) -> None:
        self._close_connection(caller)
        _close_all(caller.stdio)
        caller.stdio = []
        self.callers.discard(caller)

    def _close_in_child(self, own: _Caller) -> None:
        """In a task's process: close everything the daemon holds but the task's own connection,
        so that no descriptor of one caller outlives the daemon's use of it (in particular
        another caller's stdout)."""
        self.selector.close()
        if self.listener is not None:
            self.listener.close()
        _close_all([self._wakeup_read, self._wakeup_write, *self.private_fds])
        for caller in self.callers:
            if caller.connection is not None and caller is not own:
                caller.connection.close()
            _close_all([*caller.stdio, *([caller.pidfd] if caller.pidfd is not None else [])])


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
