"""Where the daemon listens and what travels over its socket.

Shared by the client (imported on every executor start, so: built-in modules only, no dataclasses,
no typing at run time) and the server.

Client -> daemon, once: MAGIC, the body's length (4 bytes, big-endian), the body, with the
caller's stdin, stdout and stderr attached as SCM_RIGHTS ancillary data. The body is byte strings
joined by NUL, which cannot occur in argv, the environment or a path, so nothing needs escaping:

    identity, executor, program, cwd, umask, argc, argv..., NAME=value...

Then, at any time: `signal <n>` lines, one per SIGINT/SIGTERM the caller receives.

Daemon -> client: `refused <reason>` when nothing ran (the client then runs the task in-process),
or `started <pid>` once the task runs (from then on the client cannot fall back), and `exit <code>`
when it ends. The task's process writes that `exit` line itself as its last act, possibly before
the daemon's `started`; the daemon writes it again when it reaps the process, which only matters
when the task died without writing it (a negative code: killed by that signal). The client acts on
the first `exit`.
"""

from __future__ import annotations

import os
import sys

from .. import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~2 ms)
if TYPE_CHECKING:
    from collections.abc import Mapping

DAEMON_ENV = "LLM_EXEC_DAEMON"
DISABLED = "off"
SOCKET_NAME = "daemon.sock"

MAGIC = b"LLMX"
HEADER_SIZE = len(MAGIC) + 4
MAX_REQUEST_BYTES = 16 << 20  # argv + environment; the kernel's own limit (ARG_MAX) is far lower
STDIO_FDS = (0, 1, 2)

STARTED = b"started"
EXIT = b"exit"
REFUSED = b"refused"
SIGNAL = b"signal"


def socket_path(environ: Mapping[str, str]) -> str | None:
    """The daemon's socket: $LLM_EXEC_DAEMON, else $XDG_RUNTIME_DIR/llm-exec/daemon.sock, else
    /tmp/llm-exec-$UID/daemon.sock. None when LLM_EXEC_DAEMON=off."""
    configured = environ.get(DAEMON_ENV, "")
    if configured == DISABLED:
        return None
    return configured or os.path.join(default_socket_dir(environ), SOCKET_NAME)


def default_socket_dir(environ: Mapping[str, str]) -> str:
    runtime_dir = environ.get("XDG_RUNTIME_DIR")
    # A fixed /tmp, not $TMPDIR: callers and the daemon must agree without sharing an environment.
    return os.path.join(runtime_dir, "llm-exec") if runtime_dir else f"/tmp/llm-exec-{os.getuid()}"


def identity() -> bytes:
    """What a daemon must share with its caller to run the caller's task as the caller would: the
    same llm-exec (version and location) in the same Python environment (hence the same SDKs)."""
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.fsencode(f"{__version__}:{package_dir}:{sys.prefix}")


def encode_request(executor: str, program: str, argv: list[str], cwd: bytes, umask: int,
                   environ: dict[bytes, bytes]) -> bytes:
    fields = [identity(), executor.encode(), program.encode(), cwd, b"%d" % umask, b"%d" % len(argv),
              *map(os.fsencode, argv), *(name + b"=" + value for name, value in environ.items())]
    body = b"\0".join(fields)
    return MAGIC + len(body).to_bytes(4, "big") + body


class TaskRequest:
    """A decoded request: what the task's process must look like to run as the caller's would."""

    __slots__ = ("argv", "cwd", "environ", "executor", "identity", "program", "umask")

    def __init__(self, body: bytes) -> None:
        """Raises ValueError for a body that does not follow the format above."""
        identity_, executor, program, cwd, umask, argc, *rest = body.split(b"\0")
        count = int(argc)
        if count < 1 or count > len(rest):
            raise ValueError(f"bad argument count {count}")
        self.identity = identity_
        self.executor = executor.decode()
        self.program = program.decode()
        self.cwd = cwd
        self.umask = int(umask)
        self.argv = [os.fsdecode(arg) for arg in rest[:count]]
        self.environ = dict(item.split(b"=", 1) for item in rest[count:] if b"=" in item)


def encode_line(kind: bytes, value: int | str) -> bytes:
    return kind + b" " + str(value).encode() + b"\n"


def decode_line(line: bytes) -> tuple[bytes, bytes]:
    kind, _, value = line.rstrip(b"\n").partition(b" ")
    return kind, value
