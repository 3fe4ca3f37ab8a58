"""`llm-route`: flags -> RouteOptions -> routing.router.route; `llm-route agents` -> routing.listing.
No behaviour lives here.

The click command in _route_click.py defines the interface (options, help, usage errors). Loading
click costs ~20 ms, a third of llm-route's own time, so a command line made only of the routing
flags, each with a value click would take unchanged, is read here into the same RouteOptions;
anything else (--help, --version, --schema, `agents`, an unknown flag, a value click would check
and reject or a dash-led one) goes to click, which reads and reports it as before.
tests/routing/test_cli.py holds the two readings equal.
"""

from __future__ import annotations

import errno
import gc
import os
import stat
import sys
from typing import Any

from ..config import Secrets
from ..errors import CancelledError, LlmError
from ..routing.router import PROGRAM, RouteOptions, failure_result, route

# The flags read without click: option -> RouteOptions field. Keep in step with _route_click.py.
VALUE_OPTIONS = {"--registry": "registry_path", "--input": "input_path", "--output": "output_path",
                 "--consensus": "consensus"}
FLAG_OPTIONS = {"--explain": "explain", "--stream": "stream", "--pretty": "pretty"}
# click's shell-completion request variable for this program.
COMPLETE_VAR = "_LLM_ROUTE_COMPLETE"


def fast_options(args: list[str]) -> RouteOptions | None:
    """The RouteOptions click would build from `args`, or None when click has to read them."""
    if os.environ.get(COMPLETE_VAR):
        return None
    values: dict[str, Any] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg in FLAG_OPTIONS:
            values[FLAG_OPTIONS[arg]] = True
            continue
        name, equals, value = arg.partition("=")
        field = VALUE_OPTIONS.get(name)
        if field is None:
            return None  # a subcommand, --help, --version, --schema, or something click must reject
        if not equals:
            if index == len(args):
                return None
            value = args[index]
            index += 1
        if field == "consensus":
            # click's IntRange(min=2); anything but plain digits (signs, spaces, other scripts) goes to click.
            if not (value.isascii() and value.isdigit()) or int(value) < 2:
                return None
            values[field] = int(value)
        elif _plain_path(value, dash=field == "input_path", writable=field == "output_path"):
            values[field] = value  # click would repeat the last one too
        else:
            return None
    return RouteOptions(**values)


def _plain_path(value: str, *, dash: bool, writable: bool) -> bool:
    """Whether click.Path(dir_okay=False) would pass `value` through unchanged: missing, or a
    readable (and, for --output, writable) non-directory. Dash-led values go to click."""
    if value == "-" and dash:
        return True
    if not value or value.startswith("-"):
        return False
    try:
        mode = os.stat(value).st_mode
    except OSError:
        return True  # does not exist (yet): click does not require it to
    return not stat.S_ISDIR(mode) and os.access(value, os.R_OK) and (not writable or os.access(value, os.W_OK))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: exit with the route's code. A bad flag is a configuration error (exit 2)
    and a bug of ours an internal error (exit 1); both still write one result object."""
    args = sys.argv[1:] if argv is None else list(argv)
    options = fast_options(args)
    if options is None:
        from ._route_click import main as click_main

        click_main(args)
        return
    from ..edge import guarded

    code = guarded(lambda: _run(options), fail, log)
    # The process ends here: spare interpreter shutdown the collector's passes over every object
    # the imports made (~7 ms). Finalisers, atexit handlers and flushing still run.
    gc.freeze()
    sys.exit(code)


def _run(options: RouteOptions) -> int:
    """route(), with what click's Command.main does around its callback (standalone_mode=False)."""
    try:
        return route(options)
    except (EOFError, KeyboardInterrupt):
        if sys.stderr is not None:
            sys.stderr.write("\n")  # closes the terminal's ^C echo
            sys.stderr.flush()
        return fail(CancelledError("aborted"))
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        from click.utils import _PacifyFlushWrapper  # a reader that went away: stay quiet, exit 1

        sys.stdout = _PacifyFlushWrapper(sys.stdout)  # type: ignore[assignment]
        sys.stderr = _PacifyFlushWrapper(sys.stderr)  # type: ignore[assignment]
        sys.exit(1)


def log(message: str) -> None:
    sys.stderr.write(Secrets.from_env().redact(f"{PROGRAM}: {message}\n"))


def fail(error: LlmError) -> int:
    from ..result import Output

    secrets = Secrets.from_env()
    sys.stderr.write(secrets.redact(f"{PROGRAM}: {error.type}: {error.message}\n"))
    Output(None, secrets).result(failure_result(error, None))
    return error.exit_code


def __getattr__(name: str) -> Any:
    # `cli` (the click group) and HELP live in _route_click.py; loaded only when asked for.
    if name in ("cli", "HELP"):
        from . import _route_click

        return getattr(_route_click, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
