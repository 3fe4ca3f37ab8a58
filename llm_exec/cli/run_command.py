"""`llm-exec run`: one task with any installed provider, built-in or plugin.

The console script reaches this click command only for `llm-exec run --help` (without a provider)
and shell completion: a real run is dispatched by llm_exec._entry.umbrella before click is
imported, so it costs what `llm-exec-<provider>` costs and takes the warm daemon the same way.
"""

from __future__ import annotations

import click

from .command import SPEC_NAMED_HELP


@click.command(name="run", help=SPEC_NAMED_HELP,
               context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                 "help_option_names": ["-h", "--help"]})
@click.option("--provider", metavar="NAME", envvar="LLM_EXEC_PROVIDER",
              help="The provider to run (default: $LLM_EXEC_PROVIDER, else the task's `provider` field).")
@click.pass_context
def run(ctx: click.Context, provider: str | None) -> None:
    from .command import main

    # The same path as the console script's: the executor's own flags, one result, its exit code.
    main(provider or None, f"llm-exec run --provider {provider}" if provider else "llm-exec run", list(ctx.args))
