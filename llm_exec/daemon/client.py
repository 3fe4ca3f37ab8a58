"""Hand this executor's task to a warm llm-exec-daemon, or report that none takes it.

Runs at every executor start, before we know whether the heavy in-process path is needed, so it
costs a few system calls and imports built-in modules only: `_socket` and `_signal` rather than
`socket` and `signal`, whose Python wrappers import selectors and build enums (~2.5 ms, a tenth of
the warm path's whole budget).

The task runs in a process the daemon forks, which writes straight to this process's stdin,
stdout and stderr (passed over the socket), so output bytes never pass through here. This process
only relays SIGINT/SIGTERM to the task and exits with the task's code.
"""

from __future__ import annotations

import _signal
import _socket
import os
import sys

from .protocol import (
    EXIT,
    SIGNAL,
    STARTED,
    STDIO_FDS,
    decode_line,
    encode_line,
    encode_request,
    socket_path,
)

FORWARDED_SIGNALS = (_signal.SIGINT, _signal.SIGTERM)
# How long a daemon may take to accept a task. It answers in about a millisecond; one that does
# not answer within this is wedged, and the task runs in-process (the daemon drops a request whose
# caller hung up, so the task never runs twice).
ACCEPT_TIMEOUT_SECONDS = 5.0
_CREDENTIALS_SIZE = 12  # struct ucred: pid, uid, gid as 32-bit ints


def forward(executor: str, program: str) -> int | None:
    """The task's exit code once the daemon ran it; None when no daemon took it (none configured,
    none listening, another user's, a different installation, or wedged)."""
    path = socket_path(os.environ)
    if path is None:
        return None
    try:
        cwd = os.getcwdb()
    except OSError:  # the working directory was removed: no path to hand over
        return None
    connection = _connect(path)
    if connection is None:
        return None
    try:
        return _Forwarding(connection).run(
            encode_request(executor, program, sys.argv, cwd, _current_umask(), dict(os.environb)))
    finally:
        connection.close()


def _connect(path: str) -> _socket.socket | None:
    connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        connection.settimeout(ACCEPT_TIMEOUT_SECONDS)
        connection.connect(path)
        credentials = connection.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, _CREDENTIALS_SIZE)
    except OSError:  # no socket, nobody listening (stale), path too long, ...
        connection.close()
        return None
    owner = int.from_bytes(credentials[4:8], sys.byteorder)
    if owner != os.getuid():
        # The request carries this process's environment, keys included: never to another user.
        sys.stderr.write(f"llm-exec: ignoring {path}: it is served by uid {owner}, not by this user\n")
        connection.close()
        return None
    return connection


def _current_umask() -> int:
    umask = os.umask(0o022)  # reading the umask means setting it
    os.umask(umask)
    return umask


class _Forwarding:
    """One request's life on the client side: send, wait for the start, relay signals, wait for the
    exit code."""

    def __init__(self, connection: _socket.socket) -> None:
        self.connection = connection
        self.received = b""
        self.request_sent = False
        self.started = False
        # Signals that arrived before the daemon started the task: if it never does, they get their
        # usual effect on this process, as they would have without a daemon.
        self.early_signals: list[int] = []

    def run(self, request: bytes) -> int | None:
        previous = {signum: _signal.signal(signum, self._on_signal) for signum in FORWARDED_SIGNALS}
        try:
            code = self._run(request)
        finally:
            for signum, handler in previous.items():
                _signal.signal(signum, handler)
        if code is None:
            for signum in self.early_signals:
                os.kill(os.getpid(), signum)
        return code

    def _run(self, request: bytes) -> int | None:
        try:
            self._send_request(request)
            self.request_sent = True
            for signum in self.early_signals:
                self._relay(signum)
            kind, value = self._read_message()
        except OSError:
            return None  # the daemon went away (or timed out) before it started anything
        if kind == STARTED:
            self.started = True
            self.early_signals.clear()
            self.connection.settimeout(None)  # the task's own deadline applies from here
            try:
                kind, value = self._read_message()
            except OSError:
                kind, value = b"", b""
        elif kind != EXIT:  # the task reports its exit itself, possibly before the daemon's `started`
            return None  # refused (or garbage): nothing ran
        if kind != EXIT or not value.lstrip(b"-").isdigit():
            # The task may have written its result already; there is no exit code to relay.
            sys.stderr.write("llm-exec: the daemon went away while running this task\n")
            return 1
        return _exit_code(int(value))

    def _send_request(self, request: bytes) -> None:
        descriptors = b"".join(fd.to_bytes(4, sys.byteorder) for fd in STDIO_FDS)
        sent = self.connection.sendmsg([request], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, descriptors)])
        if sent < len(request):
            self.connection.sendall(request[sent:])

    def _read_message(self) -> tuple[bytes, bytes]:
        while b"\n" not in self.received:
            chunk = self.connection.recv(4096)
            if not chunk:
                raise ConnectionResetError("daemon closed the connection")
            self.received += chunk
        line, _, self.received = self.received.partition(b"\n")
        return decode_line(line)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self.started:
            self.early_signals.append(signum)
        if self.request_sent:  # never interleave with the request's bytes; sent after it otherwise
            self._relay(signum)

    def _relay(self, signum: int) -> None:
        try:  # noqa: SIM105 - contextlib is an import this module avoids
            self.connection.sendall(encode_line(SIGNAL, signum))
        except OSError:
            pass  # the daemon is gone; reading its reply will say so


def _exit_code(code: int) -> int:
    """The task's exit code; a task killed by a signal kills this process with it, as if the task
    had been this process."""
    if code < 0:
        _signal.signal(-code, _signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code
