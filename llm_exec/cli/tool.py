"""`llm-exec`: project-level commands (the executors are `llm-exec-<provider>`)."""

from __future__ import annotations

import json
import sys
import time

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="llm-exec")
def main() -> None:
    """llm-exec tools. See also llm-exec-claude, -gpt, -gemini, -custom, -llama and llm-route.

    \b
    Examples:
      llm-exec providers                 # what is installed, keys set, base URLs in force
      llm-exec models --json             # prices, context windows, deprecations
      llm-exec stats --by provider,day   # the usage ledger
      eval "$(llm-exec completion bash)"
    """


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--since-days", type=float, default=None, help="Only calls from the last N days.")
@click.option("--by", default="agent,model,day", show_default=True,
              help="Group by a comma-separated subset of agent, provider, model, day.")
def stats(as_json: bool, since_days: float | None, by: str) -> None:
    """Summarise the usage ledger: calls, error rate, p50/p95 latency, tokens and cost per group.

    Reads the store configured by LLM_EXEC_STATE_URL / LLM_EXEC_STATE_DIR. Calls whose cost is
    unknown (no price for the model: the result said null) are left out of the cost and counted.

    \b
    Examples:
      llm-exec stats
      llm-exec stats --by model --since-days 7 --json
    """
    from ..state import StateUnavailable, open_store
    from ..state.stats import GROUPS, cost_summary, render_table, summarise

    groups = [g.strip() for g in by.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        raise click.BadParameter(f"unknown group {unknown}; use {', '.join(GROUPS)}", param_hint="--by")
    try:
        store = open_store()
        rows = store.ledger_rows(time.time() - since_days * 86400 if since_days else None)
    except StateUnavailable as exc:
        click.echo(f"llm-exec stats: state store unavailable: {exc}", err=True)
        sys.exit(2)
    summary = summarise(rows, groups)
    total = cost_summary(rows)
    if as_json:
        click.echo(json.dumps({"store": store.location, "calls": len(rows), **total, "groups": summary}, indent=2))
    else:
        cost = "unknown" if total["cost_usd"] is None else f"${total['cost_usd']}"
        if total["cost_unknown_calls"] and total["cost_usd"] is not None:
            cost += f" ({total['cost_unknown_calls']} calls of unknown cost not included)"
        click.echo(f"{len(rows)} calls in {store.location}, cost {cost}")
        if summary:
            click.echo(render_table(summary, groups))


def _register_commands() -> None:
    from .report_command import report
    from .run_command import run

    main.add_command(run)
    main.add_command(report)
    from .metrics_command import metrics  # issue 11

    main.add_command(metrics)
    # Listings and helpers (issue 13), one module each.
    from .completion_command import completion
    from .emulator_command import emulator
    from .models_command import models
    from .providers_command import providers
    from .schema_command import schema

    for command in (providers, models, schema, emulator, completion):
        main.add_command(command)


_register_commands()
