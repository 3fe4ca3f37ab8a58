"""`llm-exec completion SHELL [PROGRAM]`: the shell-completion script of any executable of the suite.

The scripts are click's own (what `_<PROG>_COMPLETE=<shell>_source PROG` prints): at each <Tab>
they run PROGRAM again with `_<PROG>_COMPLETE=<shell>_complete`, and the program answers through
click. `llm-exec` and `llm-route` are click commands; the executors, which read their flags without
click on their usual path, hand such a request to their click command (cli/command.py `main`).
The script is generated here in-process, from the same click command the program would build.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

SHELLS = ("bash", "zsh", "fish")
TOOL = "llm-exec"
ROUTER = "llm-route"

EXAMPLE = f"""\b
Examples:
  eval "$({TOOL} completion bash)"                      # in ~/.bashrc
  {TOOL} completion zsh {ROUTER} > ~/.zfunc/_{ROUTER}
  {TOOL} completion fish {ROUTER} > ~/.config/fish/completions/{ROUTER}.fish
"""


def executors() -> dict[str, str]:
    """Dedicated console script -> the registered provider it runs, as the providers declare them."""
    from ..providers.registry import builtin_entries

    return {cls.executable: entry.name for entry in builtin_entries()
            if (cls := entry.load()).executable is not None}


def programs() -> list[str]:
    return [TOOL, *executors(), ROUTER]


def click_command(program: str) -> click.Command:
    """The click command `program` answers completion requests with."""
    if program == TOOL:
        from .tool import main

        return main
    if program == ROUTER:
        from ._route_click import cli

        return cli
    executor = executors().get(program)
    if executor is None:
        raise click.BadParameter(f"{program!r} is not one of {', '.join(programs())}", param_hint="PROGRAM")
    from .command import make_command

    return make_command(executor, program)


def complete_var(program: str) -> str:
    """click's variable for `program` (Command._main_shell_completion's default)."""
    return "_{}_COMPLETE".format(program.replace("-", "_").replace(".", "_").upper())


def _complete_program(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    return [CompletionItem(name) for name in programs() if name.startswith(incomplete)]


@click.command(epilog=EXAMPLE)
@click.argument("shell", type=click.Choice(SHELLS))
@click.argument("program", default=TOOL, shell_complete=_complete_program)
def completion(shell: str, program: str) -> None:
    """Print the completion script of PROGRAM (default llm-exec) for SHELL.

    PROGRAM is llm-exec, llm-route or an executor with its own console script (see `llm-exec
    providers`, column "run"). Source the script from the shell's start-up file, or save it where the
    shell looks for completions.
    """
    from click.shell_completion import shell_complete

    sys.exit(shell_complete(click_command(program), {}, program, complete_var(program), f"{shell}_source"))
