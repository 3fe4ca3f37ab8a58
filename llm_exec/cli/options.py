"""Options the executors and llm-route share."""

from __future__ import annotations

import click


def print_schema(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """--schema NAME: print that JSON Schema and exit (an eager option's callback)."""
    if value is None or ctx.resilient_parsing:
        return
    import json

    from ..task import load_schema

    click.echo(json.dumps(load_schema(value), indent=2))
    ctx.exit(0)
