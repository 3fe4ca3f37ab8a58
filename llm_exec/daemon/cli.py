"""`llm-exec-daemon`: keep the provider SDKs imported behind a Unix socket, so that executors
started afterwards run their task in a fork of a warm process instead of importing them again."""

from __future__ import annotations

import os
import sys

import click

from .. import __version__
from .lifecycle import StartError, answering_pid, start, stop
from .protocol import DAEMON_ENV, socket_path

HELP = f"""Serve llm-exec tasks from a warm process, over a Unix socket (mode 0600, never TCP).

\b
The socket: --socket, else ${DAEMON_ENV}, else $XDG_RUNTIME_DIR/llm-exec/daemon.sock,
else /tmp/llm-exec-$UID/daemon.sock (directory 0700). Executors (llm-exec-claude, -gpt,
-gemini, -custom, -llama) forward their task to the daemon when its socket answers and run it
in-process otherwise; {DAEMON_ENV}=off turns forwarding off.

Each task runs in a process forked from the daemon, with the caller's environment (keys, base
URLs), working directory, stdin/stdout/stderr and argv: same contract, same output as in-process.
timeout_seconds still counts from the caller's start; SIGINT/SIGTERM to the caller cancel the
task. Restart the daemon after upgrading llm-exec or its SDKs (a daemon of another installation
is not used).

SIGTERM stops the daemon: it stops accepting, cancels running tasks (their callers get a
`cancelled` result) and removes its socket. Without --foreground it detaches and logs to
SOCKET.log.
"""


@click.command(name="llm-exec-daemon", help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--socket", "path", type=click.Path(dir_okay=False), help="Listen on this path.")
@click.option("--foreground", is_flag=True, help="Do not detach; log to stderr.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), help="Log file when detached.")
@click.option("--stop", "stop_", is_flag=True, help="Stop the daemon on the socket, then exit.")
@click.option("--status", is_flag=True, help="Exit 0 if a daemon answers on the socket, 1 if not.")
@click.version_option(__version__, "--version", prog_name="llm-exec-daemon", message="%(prog)s %(version)s")
def command(path: str | None, foreground: bool, log_path: str | None, stop_: bool, status: bool) -> None:
    path = path or socket_path(os.environ)
    if path is None:
        raise click.UsageError(f"{DAEMON_ENV}=off disables the daemon; give --socket PATH to run one anyway")
    if stop_:
        sys.exit(stop(path))
    if status:
        pid = answering_pid(path)
        click.echo(f"llm-exec-daemon: pid {pid} on {path}" if pid else f"llm-exec-daemon: nothing answers on {path}",
                   err=True)
        sys.exit(0 if pid else 1)
    try:
        sys.exit(start(path, foreground=foreground, log_path=log_path))
    except StartError as exc:
        raise click.ClickException(str(exc)) from None


def main() -> None:
    command()
