"""The edge of every command: whatever escapes the work -- a usage error, an abort, a bug of ours --
becomes one LlmError, so the caller can still write its one result object and exit with the
documented code. Written once here for the executors, batch mode, llm-route and their click
commands.

A bug of ours is re-raised instead when LLM_EXEC_RAISE is set (tests and debugging want the
traceback, as simonw/llm's LLM_RAISE_ERRORS), and otherwise logged with its traceback to stderr.
Nothing here is imported by the success path of a one-shot executor beyond this small module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .errors import CancelledError, ConfigurationError, LlmError

Log = Callable[[str], None]


def raising() -> bool:
    """Whether bugs of ours should propagate (LLM_EXEC_RAISE=1) instead of becoming results."""
    return bool(os.environ.get("LLM_EXEC_RAISE"))


def internal_error(exc: BaseException, log: Log) -> LlmError:
    """A bug of ours (`exc`, an exception we did not expect) as an internal error, its traceback
    logged; re-raised as it is under LLM_EXEC_RAISE."""
    if raising():
        raise exc
    import traceback  # deferred: error path only

    log("internal error:\n" + "".join(traceback.format_exception(exc)).rstrip("\n"))
    return LlmError(f"internal error: {type(exc).__name__}: {exc}")


def guarded(work: Callable[[], Any], fail: Callable[[LlmError], int], log: Log, *, click: bool = False) -> Any:
    """`work()`'s return value, or `fail(error)`'s exit code for what escaped it. With `click`,
    `work` runs a click command in standalone_mode=False: a usage error is a configuration error
    (exit 2) naming the parameter, an abort (^C at a prompt, EOF) a cancellation."""
    try:
        if not click:
            return work()
        return _click_guarded(work, fail)
    except LlmError as exc:
        return fail(exc)
    except Exception as exc:
        return fail(internal_error(exc, log))


def _click_guarded(work: Callable[[], Any], fail: Callable[[LlmError], int]) -> Any:
    import click  # only commands that already parsed flags with click come here

    try:
        return work()
    except click.ClickException as exc:
        field = getattr(getattr(exc, "param", None), "name", None)
        return fail(ConfigurationError(exc.format_message(), field=field, error_type="usage_error"))
    except click.exceptions.Abort:
        return fail(CancelledError("aborted"))
