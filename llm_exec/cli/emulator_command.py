"""`llm-exec emulator`: the bundled emulator, as `llm-exec-emulator` runs it (same flags, same code).

Its flags are parsed by the emulator's own argparse parser (llm_exec/emulator/cli.py), which this
command hands every argument to; only --help is click's, so that it can carry an example. The help
lists the parser's options, read from the parser itself so the two never drift apart.
"""

from __future__ import annotations

import sys

import click

EXAMPLE = """\b
Example (then point a provider's base-URL variable at it, see `llm-exec providers`):
  llm-exec emulator --port 8765 --latency-ms 50 &
  curl -s http://127.0.0.1:8765/_emulator/requests
"""


class _ArgparseOptions(click.Command):
    """Shows the emulator parser's options as this command's own."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from ..emulator.cli import build_parser

        rows = []
        for action in build_parser()._actions:  # argparse keeps no public list of its options
            if not action.option_strings or action.dest == "help":  # --help is click's here
                continue
            takes_value = action.nargs != 0
            metavar = f" {action.metavar or action.dest.upper()}" if takes_value else ""
            rows.append((", ".join(action.option_strings) + metavar, action.help or ""))
        rows += [record for param in self.get_params(ctx)
                 if isinstance(param, click.Option) and (record := param.get_help_record(ctx))]  # --help
        with formatter.section("Options"):
            formatter.write_dl(rows)


@click.command(cls=_ArgparseOptions, epilog=EXAMPLE,
               context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def emulator(args: tuple[str, ...]) -> None:
    """Serve the local emulator of the providers' HTTP APIs until SIGTERM/SIGINT (= llm-exec-emulator).

    Prints {"url": ..., "pid": ...} once listening. Faults are scripted with POST /_emulator/script;
    GET /_emulator/requests shows what arrived.
    """
    from ..emulator.cli import main

    sys.exit(main(list(args)))
