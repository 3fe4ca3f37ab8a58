"""Console-script entry points of the executors (pyproject.toml [project.scripts]).

Each call first offers its task to a warm llm-exec-daemon and otherwise runs in this process.
This module is the start-up path of every executor, so it imports nothing until it knows which
path it takes: forwarding needs only built-in modules (daemon/client.py); the in-process path
imports the command line as before.
"""

from __future__ import annotations

import contextlib
import os
import sys

# typing.TYPE_CHECKING without importing typing: this module is every executor's start-up path.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def __getattr__(name: str) -> Callable[[], None]:
    """`llm_exec._entry:<provider>` for each dedicated console script (pyproject's [project.scripts]
    names them, as each provider class declares its `executable`): runs that registered provider.
    No table here: the name is checked where the provider is looked up."""
    if name.startswith("__"):
        raise AttributeError(name)
    return lambda: _run(name)


PROVIDER_ENV = "LLM_EXEC_PROVIDER"


def umbrella() -> None:
    """`llm-exec`. `llm-exec run --provider NAME [flags]` starts here without click, so that it
    costs what `llm-exec-<provider>` costs (and takes the warm daemon the same way); every other
    command, and `run` asking for help, is the click group in cli/tool.py."""
    args = sys.argv[1:]
    if args[:1] == ["run"]:
        provider, flags = _provider_flag(args[1:])
        if provider is None:
            provider = os.environ.get(PROVIDER_ENV) or None
        if provider is not None and provider.strip():
            sys.argv = [sys.argv[0], *flags]  # what the executor (or the daemon's child) parses
            _run(provider, f"llm-exec run --provider {provider}")
        if not ({"-h", "--help"} & set(flags)):
            # No provider given: the task's `provider` field names it, read by the runner.
            sys.argv = [sys.argv[0], *flags]
            from .cli.command import main

            try:
                main(None, "llm-exec run")
            except SystemExit as exit_:
                _exit_now(exit_.code)
    from .cli.tool import main as tool

    tool()


def _provider_flag(args: list[str]) -> tuple[str | None, list[str]]:
    """(--provider's value, the other arguments); the last --provider wins, as with click."""
    provider: str | None = None
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            rest += args[index - 1:]
            break
        if arg == "--provider" and index < len(args):
            provider, index = args[index], index + 1
        elif arg.startswith("--provider="):
            provider = arg.partition("=")[2]
        else:
            rest.append(arg)
    return provider, rest


def _run(executor: str, program: str | None = None) -> None:
    """Exit with the code of the task: run by the daemon if one takes it, else in this process."""
    program = program or f"llm-exec-{executor}"
    from .daemon.client import forward

    code = forward(executor, program)
    if code is not None:
        # Served: this process wrote nothing to stdout and holds nothing to clean up, so skip the
        # interpreter's shutdown (~3 ms, a tenth of what a warm call costs beyond `python -c pass`).
        sys.stderr.flush()
        os._exit(code)
    from .cli.command import main

    try:
        main(executor, program)
    except SystemExit as exit_:
        _exit_now(exit_.code)
    # main always exits; reaching here would be a bug, so leave through the normal path.


def _exit_now(code: object) -> None:
    """Leave without the interpreter's teardown, once the result is written.

    Finalising the interpreter frees every object the SDK import created and runs a last full
    garbage collection over them: that alone costs more than all of our own code (`import
    anthropic` 1119 ms with teardown, 857 ms without; google-genai 456 -> 354; requests 103 -> 83).
    Nothing of ours needs it: the result and any --output file are written and closed, the
    state store's commits are durable without a close (SQLite WAL), and the only threads left are
    daemon threads. What must still happen is the flush of stdout/stderr the teardown would do.
    """
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): print it, as the interpreter would
        sys.stderr.write(f"{code}\n")
        status = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # the reader went away: nothing left to deliver
            stream.flush()
    os._exit(status & 0xFF if status >= 0 else 1)
