"""Console-script entry points of the executors (pyproject.toml [project.scripts]).

Each call first offers its task to a warm llm-exec-daemon and otherwise runs in this process.
This module is the start-up path of every executor, so it imports nothing until it knows which
path it takes: forwarding needs only built-in modules (daemon/client.py); the in-process path
imports the command line as before.
"""

from __future__ import annotations

import os
import sys


def claude() -> None:
    _run("claude")


def gpt() -> None:
    _run("gpt")


def gemini() -> None:
    _run("gemini")


def custom() -> None:
    _run("custom")


def llama() -> None:
    _run("llama")


def _run(executor: str) -> None:
    """Exit with the code of the task: run by the daemon if one takes it, else in this process."""
    program = f"llm-exec-{executor}"
    from .daemon.client import forward

    code = forward(executor, program)
    if code is not None:
        # Served: this process wrote nothing to stdout and holds nothing to clean up, so skip the
        # interpreter's shutdown (~3 ms, a tenth of what a warm call costs beyond `python -c pass`).
        sys.stderr.flush()
        os._exit(code)
    from .cli.command import main

    main(executor, program)
